"""LightningModules: losses, optimisation schedule and evaluation of each model."""
