"""The project's user-facing errors, and how the entry points show them: one line that
names the problem and the fix, exit code 2, no traceback (HYDRA_FULL_ERROR=1 shows it)."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

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
    """Around an entry point's work: a T2IError becomes its one-line message and exit 2, and
    the run folder Hydra made for the refused command is removed again (it writes nothing)."""
    fresh = _fresh_run_folder()
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
        if fresh is not None:
            _remove_if_untouched(*fresh)
        raise SystemExit(2) from None


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _fresh_run_folder() -> tuple[Path, set[str]] | None:
    """(folder, its file names) when Hydra has just made this single run's folder: it holds
    nothing but Hydra's own empty log files. None otherwise (no Hydra, a sweep, a folder in use)."""
    if not HydraConfig.initialized() or _in_multirun():
        return None
    folder = Path(HydraConfig.get().runtime.output_dir)
    entries = list(folder.iterdir()) if folder.is_dir() else []
    if all(p.is_file() and p.suffix == ".log" and p.stat().st_size == 0 for p in entries):
        return folder, {p.name for p in entries}
    return None


def _remove_if_untouched(folder: Path, names: set[str]) -> None:
    """Remove a refused command's run folder when it still holds only the log files it had
    at the start (what the command itself logged before the refusal goes with them)."""
    try:
        entries = list(folder.iterdir())
        if {p.name for p in entries} != names:
            return  # something else was written there: keep it
        for p in entries:
            p.unlink()
        folder.rmdir()
    except OSError:
        pass  # the folder is only tidied away: a failure to do so changes nothing else
