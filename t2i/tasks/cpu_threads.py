"""`model.cpu_threads`: torch's intra-op threads while a model trains or evaluates on CPU.

Why: on 2 cores shared with other busy processes, every parallel region waits for a
descheduled thread. Measured: 2 threads made a 32x32 GAN-CLS step 27x slower than 1
(5.4 s vs 0.2 s), and an LSTM sentiment batch 6x slower (2.0 s vs 0.34 s). null keeps
torch's setting. On idle cores the other way round: the default run's GAN-CLS trained 400
steps in 35 s with 2 threads against 48 s with 1 (whole process, docs/default_run.md).
`auto` therefore takes the cores that are idle when the run starts (see `idle_cores`).
"""
from __future__ import annotations

import logging
import os
import time

import torch

from t2i.tensors import torch_threads

log = logging.getLogger("t2i")


def busy_fraction(window: float = 0.25) -> float | None:
    """The machine's share of busy CPU time over the next `window` seconds, from /proc/stat
    (this process sleeps meanwhile, so it counts the others); None where there is none. Not
    the load average: it trails the last minute, and a run started right after another
    would still see that one."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total
    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def idle_cores() -> int:
    """Cores this process may use that are idle now (rounded), at least 1 and at most
    OMP_NUM_THREADS when that is set (pytest workers pin it to 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = busy_fraction()
    if busy is None:  # no /proc/stat: the load average instead
        busy = min(1.0, os.getloadavg()[0] / cores) if hasattr(os, "getloadavg") else 0.0
    idle = int(cores * (1.0 - busy) + 0.5)
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, idle, int(limit) if limit.isdigit() and int(limit) > 0 else cores))


class CPUThreads:
    """LightningModule mixin (list it before the LightningModule base). Call
    `init_cpu_threads` in `__init__`. The setting applies from `setup` to `teardown`
    of a run, and inside `with self.cpu_threads_applied():` (evaluation); the previous
    setting comes back afterwards."""

    def init_cpu_threads(self, cpu_threads: int | str | None) -> None:
        if cpu_threads != "auto" and cpu_threads is not None and (not isinstance(cpu_threads, int)
                                                                  or cpu_threads < 1):
            raise ValueError(f"model.cpu_threads must be >= 1, auto (the idle cores) or null (torch's default), "
                             f"got {cpu_threads!r}")
        self.cpu_threads, self._threads_before, self._auto_threads = cpu_threads, None, None

    def threads_wanted(self) -> int | None:
        """The threads to run with: the setting when the model runs on CPU, else None (as they are)."""
        # in `setup` the module is not on its device yet: ask the trainer where it goes
        device = self.trainer.strategy.root_device if self._trainer is not None else self.device
        return self.resolved_cpu_threads() if self.cpu_threads and device.type == "cpu" else None

    def use_cpu_threads(self) -> int:
        """Set the threads when the model runs on CPU; returns the previous setting."""
        before = torch.get_num_threads()
        wanted = self.threads_wanted()
        if wanted:
            torch.set_num_threads(wanted)
        return before

    def resolved_cpu_threads(self) -> int:
        """The thread count: `auto` is measured once per model (the first run's start) and
        logged, since float sums, and so the run's numbers, differ with it."""
        if self.cpu_threads != "auto":
            return int(self.cpu_threads)
        if self._auto_threads is None:
            self._auto_threads = idle_cores()
            log.info("model.cpu_threads=auto: %d torch thread(s), the cores idle now (set model.cpu_threads=N "
                     "for the same numbers on a busier or quieter machine)", self._auto_threads)
        return self._auto_threads

    def cpu_threads_applied(self):
        """`with model.cpu_threads_applied():` the model's threads inside (t2i.tensors.torch_threads)."""
        return torch_threads(self.threads_wanted())

    def setup(self, stage: str) -> None:
        if self._threads_before is None:
            self._threads_before = self.use_cpu_threads()
        super().setup(stage)

    def teardown(self, stage: str) -> None:
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        super().teardown(stage)
