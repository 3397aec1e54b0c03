"""Lightning callbacks: sample grids, config-in-checkpoint, W&B set-up."""
