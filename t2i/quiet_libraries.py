"""The one place where library messages that need no action are silenced, each with why.
What is left on the console is what a user must act on. Called by train.py, evaluate.py
and generate.py (`quiet_libraries()`), after Hydra has set up logging."""
from __future__ import annotations

import logging
import warnings

# (message regex, category, why it needs no action)
IGNORED_WARNINGS = [
    # Lightning's own helper (_pytree.py) builds a LeafSpec, which torch 2.14 deprecates (FutureWarning); not our call.
    (r".*isinstance\(treespec, LeafSpec\)", FutureWarning),
    # GAN checkpoints are meant to hold the state AFTER the step: that is what resumes exactly (tested).
    (r"Using ModelCheckpoint with manual optimization", UserWarning),
    # The data modules serve a validation split for tasks that validate; GANs have none (limit_val_batches=0).
    (r"You passed in a `val_dataloader` but have no `validation_step`", UserWarning),
    # KID keeps every feature vector in memory: 1000 x 2048 floats at most here, 8 MB.
    (r"Metric `Kernel Inception Distance` will save all extracted features", UserWarning),
]

# Lightning's info lines that are advertisements, not information about the run.
IGNORED_LOG_LINES = ("litlogger",)


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in IGNORED_LOG_LINES)


def quiet_libraries() -> None:
    """Install the filters above (idempotent)."""
    for message, category in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                 "lightning.pytorch.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines())
