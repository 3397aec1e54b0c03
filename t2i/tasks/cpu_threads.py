"""`model.cpu_threads`: torch's intra-op threads while a model trains or evaluates on CPU.

Why: on 2 cores shared with other busy processes, every parallel region waits for a
descheduled thread. Measured: 2 threads made a 32x32 GAN-CLS step 27x slower than 1
(5.4 s vs 0.2 s), and an LSTM sentiment batch 6x slower (2.0 s vs 0.34 s). null keeps
torch's setting, which may be a little faster on idle cores.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


class CPUThreads:
    """LightningModule mixin (list it before the LightningModule base). Call
    `init_cpu_threads` in `__init__`. The setting applies from `setup` to `teardown`
    of a run, and inside `with self.cpu_threads_applied():` (evaluation); the previous
    setting comes back afterwards."""

    def init_cpu_threads(self, cpu_threads: int | None) -> None:
        if cpu_threads is not None and cpu_threads < 1:
            raise ValueError(f"model.cpu_threads must be >= 1 or null (torch's default), got {cpu_threads}")
        self.cpu_threads, self._threads_before = cpu_threads, None

    def use_cpu_threads(self) -> int:
        """Set the threads when the model runs on CPU; returns the previous setting."""
        before = torch.get_num_threads()
        # in `setup` the module is not on its device yet: ask the trainer where it goes
        device = self.trainer.strategy.root_device if self._trainer is not None else self.device
        if self.cpu_threads and device.type == "cpu":
            torch.set_num_threads(int(self.cpu_threads))
        return before

    @contextmanager
    def cpu_threads_applied(self):
        before = self.use_cpu_threads()
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def setup(self, stage: str) -> None:
        if self._threads_before is None:
            self._threads_before = self.use_cpu_threads()
        super().setup(stage)

    def teardown(self, stage: str) -> None:
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        super().teardown(stage)
