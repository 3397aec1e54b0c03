"""Loggers: a CSV logger that survives resuming, and a Weights & Biases logger that works
offline by default and never leaks one crashed multirun job into the next one's run."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, WandbLogger  # WandbLogger needs wandb only when built

from t2i.atomic_files import atomic_write_text


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger deletes an existing metrics.csv when it starts; a run resumed
    with ckpt_path=last would lose its history. This one keeps the earlier rows and
    appends to them."""

    @property
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        previous = path.read_text() if path.exists() else ""
        experiment = CSVLogger.experiment.fget(self)  # removes the file
        if previous.strip() and hasattr(experiment, "metrics_keys"):
            atomic_write_text(path, previous)
            experiment.metrics_keys = next(csv.reader([previous.splitlines()[0]]))
        return experiment


def logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def make_wandb_logger(mode: str = "auto", **kw):
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto|online|offline|disabled, got {mode!r}")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")
    # A fresh run per Hydra job: a previous job that crashed must not be resumed into.
    return WandbLogger(mode=mode, reinit="finish_previous", **kw)


def finish_wandb(exit_code: int) -> None:
    """Close the current W&B run (if any) with the job's exit code."""
    try:
        import wandb  # optional dependency (logger=wandb)
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
        # finish() returns once the run is marked complete, but the service closes the run's
        # file (offline-run-*/run-*.wandb) only after a fire-and-forget "inform_finish": a
        # reader, a next job, or a process killed now could find it truncated. teardown()
        # waits for the service to close every run and exit (the next run starts a new one).
        wandb.teardown()
