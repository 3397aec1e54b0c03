"""Lightning callbacks: sample grids, config-in-checkpoint."""
