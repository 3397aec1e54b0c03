"""`model.ema_decay`: sample from an exponential moving average (EMA) of the generator's
weights, while training keeps updating the live generator.

Why: a GAN's generator keeps moving around its equilibrium, and any one step's weights
can land on a bad swing (on shapes, GAN-CLS's shape accuracy moves by ±0.1 between
checkpoints 500 steps apart; a DCGAN's samples flicker between clean shapes and stripes).
The average of the recent weights sits near the middle of those swings (Yazici et al.
2019, "The unusual effectiveness of averaging in GAN training")."""
from __future__ import annotations

import copy

import torch


class GeneratorEMA:
    """LightningModule mixin (list it before the LightningModule base). Call `init_ema`
    at the end of `__init__`, once `self.generator` exists (the average is a submodule,
    so checkpoints carry it), and draw with `self.drawing_generator()`."""

    def init_ema(self, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"model.ema_decay must be in [0, 1) (0 turns the average off), got {decay}")
        self.ema_decay = decay
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if decay > 0 else None

    def drawing_generator(self) -> torch.nn.Module:
        """The generator that draws: the average in eval mode (when kept), else the live one."""
        ema = getattr(self, "generator_ema", None)
        return ema if ema is not None and not self.training else self.generator

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        ema = getattr(self, "generator_ema", None)
        if ema is not None:
            # warm-up: early weights are far from good ones, so average over a shorter horizon
            decay = min(self.ema_decay, (1 + self.global_step) / (10 + self.global_step))
            with torch.no_grad():
                for avg, live in zip(ema.parameters(), self.generator.parameters()):
                    avg.lerp_(live, 1.0 - decay)
                for avg, live in zip(ema.buffers(), self.generator.buffers()):
                    avg.copy_(live)  # batch-norm statistics: the live ones
        super().on_train_batch_end(outputs, batch, batch_idx)
