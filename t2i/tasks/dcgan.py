"""Unconditional DCGAN: BCE-with-logits, non-saturating generator loss."""
from __future__ import annotations

import torch

from t2i.evaluation import evaluate_unconditional
from t2i.nets.dcgan import Discriminator, Generator
from t2i.tasks.gan import GANTask, bce


class DCGAN(GANTask):
    def __init__(self, channels: int = 3, image_size: int = 64, ngf: int = 64, ndf: int = 64,
                 label_smoothing: float = 0.0, **gan_kw):
        super().__init__(**gan_kw)
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d", "scheduler"])
        self.generator = Generator(self.nz, ngf, channels, image_size)
        self.discriminator = Discriminator(channels, ndf, image_size)
        self.real_label = 1.0 - label_smoothing  # one-sided smoothing

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def discriminator_loss(self, batch, fake):
        real_logits = self.discriminator(batch["image"])
        fake_logits = self.discriminator(fake)
        loss = bce(real_logits, self.real_label) + bce(fake_logits, 0.0)
        return loss, {"train/d_real": torch.sigmoid(real_logits).mean(),
                      "train/d_fake": torch.sigmoid(fake_logits).mean()}

    def generator_loss(self, batch, fake):
        logits = self.discriminator(fake)
        return bce(logits, 1.0), {"train/d_fake_g": torch.sigmoid(logits).mean()}

    def evaluate(self, datamodule, eval_cfg, out_dir) -> dict:
        return evaluate_unconditional(self, datamodule, eval_cfg, out_dir)
