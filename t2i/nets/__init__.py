"""Pure nn.Modules: no losses, no optimisers, no data knowledge."""
