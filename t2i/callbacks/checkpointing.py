"""Checkpoint helpers: the run's config travels inside every checkpoint, and a run
stopped by SIGTERM (a cluster's pre-emption, `kill`, a time limit) saves before exiting."""
from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger("t2i")


class ConfigInCheckpoint(pl.Callback):
    """Stores the run's resolved config in every checkpoint, so evaluate.py and
    generate.py need nothing but the checkpoint."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["t2i_config"] = self.config


class SaveOnSigterm(pl.Callback):
    """Lightning raises SIGTERMException only between batches, so the weights and both
    optimizers are consistent: write `last.ckpt` and resume later with ckpt_path=last.
    (Ctrl-C is not covered: it can land in the middle of an optimizer step.)"""

    def __init__(self, dirpath: str | Path):
        self.path = Path(dirpath) / "last.ckpt"

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.path, weights_only=False)
            log.warning("SIGTERM: saved %s at step %d; resume with ckpt_path=last", self.path, trainer.global_step)
