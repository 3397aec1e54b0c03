"""Ctrl-C and SIGTERM outside training (imports, setup, the cache build, the evaluation
after fit): one line on stderr, exit 130 / 143, no traceback. The signal becomes an
exception, so `finally` blocks still run (scratch files are removed, atomic writes leave
the old file). During training SaveOnStop and Lightning handle both (a resumable
last.ckpt) and put this handler back afterwards. Standard library only: entry points
import it first, before torch."""
from __future__ import annotations

import os
import signal
import sys

NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
_training = False  # Lightning calls this handler after its own SIGTERM one: it must then do nothing
_importing = True  # until ready(): nothing is written yet, so the process ends at once


class Interrupted(SystemExit):
    """Raised by the handler: exits 128 + signal. A SystemExit, so `except Exception` (and
    Hydra's error report) lets it through."""

    def __init__(self, signum: int):
        super().__init__(128 + int(signum))
        self.signum = signum


def training(active: bool) -> None:
    """SaveOnStop, while the training loop runs: a SIGTERM is Lightning's (save, then stop)."""
    global _training
    _training = active


def ready() -> None:
    """The entry point's imports are done: from now on the signal is raised, so clean-up runs."""
    global _importing
    _importing = False


def _stop(signum, frame) -> None:
    if _training:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second press must not cut the clean-up short
    print(f"stopped by {NAMES.get(signum, signum)}: exit {128 + signum}; files already written are complete "
          "(every write is atomic)", file=sys.stderr, flush=True)
    if _importing:  # an exception inside an import can leave a module half-made (numpy: a RecursionError)
        os._exit(128 + signum)
    raise Interrupted(signum)


def exit_on_stop_signals() -> None:
    """Install the handler for SIGINT and SIGTERM (main thread only)."""
    for sig in NAMES:
        signal.signal(sig, _stop)
