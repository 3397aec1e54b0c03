"""Unconditional DCGAN: non-saturating BCE-with-logits (Goodfellow et al.) or hinge loss,
an optional spectrally normalised discriminator and an optional average of G's weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from t2i.nets.dcgan import Discriminator, Generator
from t2i.tasks.cpu_threads import CPUThreads
from t2i.tasks.ema import GeneratorEMA
from t2i.tasks.gan import GANTask, bce

LOSSES = ("bce", "hinge")


class DCGAN(CPUThreads, GeneratorEMA, GANTask):
    def __init__(self, channels: int = 3, image_size: int = 64, ngf: int = 64, ndf: int = 64,
                 label_smoothing: float = 0.0, loss: str = "bce", spectral_norm: bool = False,
                 ema_decay: float = 0.0, cpu_threads: int | None = None, **gan_kw):
        super().__init__(**gan_kw)
        if loss not in LOSSES:
            raise ValueError(f"model.loss must be one of {LOSSES}, got {loss!r}")
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d", "scheduler"])
        self.generator = Generator(self.nz, ngf, channels, image_size)
        self.discriminator = Discriminator(channels, ndf, image_size, spectral_norm=spectral_norm)
        self.real_label = 1.0 - label_smoothing  # one-sided smoothing (bce only)
        self.loss_kind = loss
        self.init_cpu_threads(cpu_threads)
        self.init_ema(ema_decay)

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.drawing_generator()(z)

    def discriminator_loss(self, batch, fake):
        real_logits = self.discriminator(batch["image"])
        fake_logits = self.discriminator(fake)
        if self.loss_kind == "hinge":
            loss = F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        else:
            loss = bce(real_logits, self.real_label) + bce(fake_logits, 0.0)
        return loss, {"train/d_real": torch.sigmoid(real_logits).mean(),
                      "train/d_fake": torch.sigmoid(fake_logits).mean()}

    def generator_loss(self, batch, fake):
        logits = self.discriminator(fake)
        loss = -logits.mean() if self.loss_kind == "hinge" else bce(logits, 1.0)
        return loss, {"train/d_fake_g": torch.sigmoid(logits).mean()}

    def evaluate(self, datamodule, eval_cfg, out_dir) -> dict:
        from t2i.evaluation import evaluate_unconditional
        with self.cpu_threads_applied():
            return evaluate_unconditional(self, datamodule, eval_cfg, out_dir)
