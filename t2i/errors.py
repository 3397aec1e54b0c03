"""The project's user-facing errors, and how the entry points show them: one line that
names the problem and the fix, exit code 2, no traceback (HYDRA_FULL_ERROR=1 shows it)."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode


class T2IError(Exception):
    """An error the user can fix from its message alone (bad setting, file, folder)."""


class ConfigError(T2IError, ValueError):
    """A setting with a value that is not allowed: names the key, the value and what is."""


class CheckpointError(T2IError, ValueError):
    """A ckpt_path that is not a checkpoint, or one of another model than the config's."""


class ModelFolderError(T2IError, FileNotFoundError, ValueError):
    """A model=DIR that is not an exported generator: missing (FileNotFoundError), or its
    files are not one (ValueError), as the library raised before."""


class RunFolderError(T2IError):
    """A run folder that is in use or already holds a run."""


class RunStopped(SystemExit):
    """A run stopped by a signal after saving a resumable checkpoint: exits 128 + signal
    (143 SIGTERM, 130 Ctrl-C), so schedulers and `&&` chains never take it for finished."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + int(signum))
        self.message = message


@contextmanager
def user_errors():
    """Around an entry point's work: a T2IError becomes its one-line message and exit 2."""
    try:
        yield
    except (T2IError, InstantiationException) as error:
        if isinstance(error, InstantiationException):
            # a constructor's own check (ValueError: "data.batch_size must be >= 1, got 0"),
            # which Hydra wraps; anything else is a bug and keeps its traceback
            if not isinstance(error.__cause__, (T2IError, ValueError, FileNotFoundError)):
                raise
            error = error.__cause__
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or _in_multirun():
            raise  # a sweep reports the failed job (Hydra's "Error executing job") and goes on
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
