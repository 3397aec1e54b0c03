"""Unconditional DCGAN: non-saturating BCE-with-logits (Goodfellow et al.) and an optional
lazy R1 gradient penalty on real images (Mescheder et al. 2018)."""
from __future__ import annotations

import torch

from t2i.evaluation.image_evaluation import evaluate_generator
from t2i.image_generator import ImageGenerator
from t2i.nets.dcgan import Discriminator, Generator
from t2i.tasks.cpu_threads import CPUThreads
from t2i.tasks.gan import GANTask, bce, r1_penalty


class DCGAN(ImageGenerator, CPUThreads, GANTask):
    def __init__(self, channels: int = 3, image_size: int = 64, ngf: int = 64, ndf: int = 64,
                 label_smoothing: float = 0.0, upsample: str = "deconv", r1_gamma: float = 0.0, r1_every: int = 1,
                 cpu_threads: int | str | None = "auto", channels_last: bool = True, **gan_kw):
        super().__init__(channels_last=channels_last, **gan_kw)
        if r1_gamma < 0:
            raise ValueError(f"model.r1_gamma must be >= 0 (0 turns the penalty off), got {r1_gamma}")
        if r1_every < 1:
            raise ValueError(f"model.r1_every must be >= 1 (D steps between penalties), got {r1_every}")
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        self.generator = Generator(self.nz, ngf, channels, image_size, upsample=upsample)
        self.discriminator = Discriminator(channels, ndf, image_size)
        self.real_label = 1.0 - label_smoothing  # one-sided smoothing
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self.init_cpu_threads(cpu_threads)

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def discriminator_loss(self, batch, fake):
        # lazy R1 (StyleGAN2): every r1_every-th step, weighted r1_every times, at a fraction of the cost
        penalise = self.lazy_due(self.r1_every, self.r1_gamma)
        real = batch["image"].detach().requires_grad_(penalise)
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
        loss = bce(real_logits, self.real_label) + bce(fake_logits, 0.0)
        logs = {"train/d_real": torch.sigmoid(real_logits).mean(), "train/d_fake": torch.sigmoid(fake_logits).mean()}
        if penalise:
            # R1: D's gradient norm on real images, pushed to 0; it keeps D from racing ahead of G
            penalty = r1_penalty(real_logits, real)
            loss = loss + 0.5 * self.r1_gamma * self.r1_every * penalty
            logs["train/r1"] = penalty.detach()
        return loss, logs

    def generator_loss(self, batch, fake):
        logits = self.discriminator(fake)
        loss = bce(logits, 1.0)
        return loss, {"train/d_fake_g": torch.sigmoid(logits).mean()}

    def evaluate(self, datamodule, settings, out_dir) -> dict:
        with self.cpu_threads_applied():
            return evaluate_generator(self, datamodule, settings, out_dir)
