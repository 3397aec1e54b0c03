"""Checkpoint helpers: the run's config travels inside every checkpoint, and a run
stopped by a signal (a cluster's pre-emption, `kill`, a time limit, Ctrl-C) saves a
resumable last.ckpt before exiting non-zero."""
from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from t2i import stops

log = logging.getLogger("t2i")

# Ctrl-C, and SLURM's pre-emption warnings (`sbatch --signal=USR1@90`; Lightning's SLURM
# environment uses SIGUSR1 for requeueing and installs its own handler when it does).
# SIGTERM is Lightning's: it raises SIGTERMException between batches.
STOP_SIGNALS = (signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class Stopped(Exception):
    """Raised between two training batches after a stop signal (see SaveOnStop)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class ConfigInCheckpoint(pl.Callback):
    """Stores the run's resolved config in every checkpoint, so evaluate.py and
    generate.py need nothing but the checkpoint."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["t2i_config"] = self.config


class SaveOnStop(pl.Callback):
    """SIGTERM, Ctrl-C, SIGUSR1/2: finish the current batch, write `last.ckpt` (weights and
    both optimizers consistent, as between any two steps), then stop; `stopped_by` says
    which signal, so train() exits 128 + it. A second Ctrl-C stops at once, unsaved."""

    def __init__(self, dirpath: str | Path):
        self.path = Path(dirpath) / "last.ckpt"
        self.signum: int | None = None
        self.stopped_by: int | None = None
        self._previous: dict = {}

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s: saving a checkpoint after this step, then stopping%s", signal.Signals(signum).name,
                    " (Ctrl-C again: stop now, unsaved)" if signum == signal.SIGINT else "")

    def on_train_start(self, trainer, pl_module) -> None:
        self.signum = self.stopped_by = None
        stops.training(True)
        for sig in STOP_SIGNALS:
            current = signal.getsignal(sig)
            if sig == signal.SIGINT or current in (signal.SIG_DFL, None):  # leave Lightning's SLURM handler
                try:
                    self._previous[sig] = signal.signal(sig, self._on_signal)
                except ValueError:  # not the main thread: signals cannot be handled here
                    return

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.signum is not None:
            raise Stopped(self.signum)

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, (SIGTERMException, Stopped)) and not trainer.fast_dev_run:
            signum = exception.signum if isinstance(exception, Stopped) else signal.SIGTERM
            before = self._set_handlers(self._while_saving)  # a second signal now waits for the file
            try:
                trainer.save_checkpoint(self.path, weights_only=False)
            finally:
                self._set_handlers(before)
            self.stopped_by = signum  # only now: train() says "last.ckpt saved" on this alone
            log.warning("%s: saved %s at step %d", signal.Signals(signum).name, self.path, trainer.global_step)
        self._restore()

    def _while_saving(self, signum, frame) -> None:
        log.warning("%s: still writing %s, stopping as soon as it is complete", signal.Signals(signum).name,
                    self.path)

    @staticmethod
    def _set_handlers(handler) -> dict:
        """SIGINT and SIGTERM to `handler` (a dict: one per signal); returns the ones replaced."""
        before = {}
        for sig in list(handler) if isinstance(handler, dict) else (signal.SIGINT, signal.SIGTERM):
            try:
                before[sig] = signal.signal(sig, handler[sig] if isinstance(handler, dict) else handler)
            except ValueError:  # not the main thread: signals cannot be handled here
                break
        return before

    def _restore(self) -> None:
        stops.training(False)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
