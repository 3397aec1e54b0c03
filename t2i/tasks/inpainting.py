"""Inpainting tasks: fill the hidden 32x32 centre of a 64x64 image from its border (and
caption features).

- `CNNAutoencoderInpainting`: the source report's autoencoder, MSE + Adam, automatic
  optimisation with a validation loss (`val/loss`) for early stopping.
- `ContextEncoderInpainting`: Pathak et al. 2016 on the shared GAN step:
  loss_G = wtl2 * L2 + (1 - wtl2) * adversarial, the L2 over the predicted patch with
  its `overlap_pred` ring weighted `overlap_weight` times; the discriminator sees the
  centre, conditioned on the caption when there is one.

Both evaluate the same way (t2i.evaluation.inpainting.evaluate_inpainting): metrics.json keys l1/l2/psnr/ssim
_centre, the same for the trivial border-mean fill (`psnr_centre_baseline`, ...), FID
of the full reconstructions with Inception weights, and inpainting.png.
"""
from __future__ import annotations

import logging
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from t2i.data.coco import caption_feature_dim
from t2i.evaluation.inpainting import evaluate_inpainting
from t2i.images import to_unit
from t2i.nets.inpainting import (
    CentreDiscriminator,
    CNNAutoencoder,
    ContextEncoder,
    centre_crop,
    hole_mask,
    paste_centre,
)
from t2i.tasks.gan import GANTask, bce
from t2i.tensors import derived_seed

log = logging.getLogger("t2i")


def augment_batch(batch: dict, hole_size: int, flip: bool, max_shift: int, seed: int, step: int) -> dict:
    """New (border, centre) pairs from the same photos: each image is mirrored
    left-right with probability 1/2 and shifted by up to `max_shift` pixels (reflected
    at the edges) before its centre is hidden again, so a small training set is much
    harder to memorise. Draws depend only on (seed, step): a resumed run augments as an
    uninterrupted one would have."""
    image = batch["image"]
    n, size = image.shape[0], image.shape[-1]
    g = torch.Generator().manual_seed(derived_seed(seed, step))
    flips = torch.rand(n, generator=g) < 0.5
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
    if flip:
        image = torch.where(flips.to(image.device)[:, None, None, None], image.flip(-1), image)
    if max_shift:
        padded = F.pad(image, (max_shift,) * 4, mode="reflect")
        image = torch.stack([padded[i, :, max_shift + dy:max_shift + dy + size, max_shift + dx:max_shift + dx + size]
                             for i, (dy, dx) in enumerate(shifts.tolist())])
    hole = hole_mask(size, hole_size, image.device)
    masked = torch.where(hole, batch["masked"], image)  # the hole keeps its fill colour
    return {**batch, "image": image, "masked": masked}


class InpaintingEvaluation:
    """What both inpainting tasks share: the centre target, flips, previews and evaluation."""

    hole_size: int = 32
    flip: bool = True
    max_shift: int = 0
    seed: int = 0

    def augment(self, batch: dict) -> dict:
        if not (self.flip or self.max_shift):
            return batch
        return augment_batch(batch, self.hole_size, self.flip, self.max_shift, self.seed, self.global_step)

    def predict_centre(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def target_centre(self, batch: dict, size: int | None = None) -> torch.Tensor:
        return centre_crop(batch["image"], size or self.hole_size)

    def preview(self, batch: dict) -> torch.Tensor:
        """Full images with the predicted centre pasted in (sample grids)."""
        return paste_centre(batch["masked"], self.predict_centre(batch))

    def evaluate(self, datamodule, settings, out_dir) -> dict:
        return evaluate_inpainting(self, datamodule, settings, out_dir)


# ---------------------------------------------------------------------- autoencoder
class CNNAutoencoderInpainting(InpaintingEvaluation, pl.LightningModule):
    def __init__(self, optimizer: Callable, channels: int = 3, image_size: int = 64, hole_size: int = 32,
                 width: int = 32, text_proj: int = 128, residual: bool = True, captions: str = "none",
                 bow_size: int = 1000, word2vec_dim: int = 100, flip: bool = True, max_shift: int = 8, seed: int = 0):
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"])
        self.optimizer, self.hole_size = optimizer, hole_size
        self.flip, self.max_shift, self.seed = flip, max_shift, seed
        text_dim = caption_feature_dim(captions, bow_size, word2vec_dim)
        self.net = CNNAutoencoder(channels, image_size, hole_size, width, text_dim, text_proj, residual)

    def predict_centre(self, batch: dict) -> torch.Tensor:
        return self.net(batch["masked"], batch.get("caption_features"))

    def _loss(self, batch: dict) -> torch.Tensor:
        return F.mse_loss(self.predict_centre(batch), self.target_centre(batch))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.augment(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), prog_bar=True, on_epoch=True, batch_size=batch["image"].shape[0])

    def configure_optimizers(self):
        return self.optimizer(params=self.parameters())


# ----------------------------------------------------------------- context encoder
class ContextEncoderInpainting(InpaintingEvaluation, GANTask):
    def __init__(self, channels: int = 3, image_size: int = 64, hole_size: int = 32, overlap_pred: int = 4,
                 overlap_weight: float = 10.0, wtl2: float = 0.999, nef: int = 64, ngf: int = 64, ndf: int = 64,
                 bottleneck: int = 512, text_proj: int = 128, residual: bool = True, captions: str = "none",
                 bow_size: int = 1000, word2vec_dim: int = 100, flip: bool = True, max_shift: int = 8, **gan_kw):
        gan_kw.setdefault("nz", 1)  # the context encoder draws no noise
        super().__init__(**gan_kw)
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        if not 0.0 <= wtl2 <= 1.0:
            raise ValueError(f"model.wtl2 must be in [0, 1], got {wtl2}")
        if overlap_pred < 0 or overlap_weight < 0:
            raise ValueError("model.overlap_pred and model.overlap_weight must be >= 0")
        text_dim = caption_feature_dim(captions, bow_size, word2vec_dim)
        self.generator = ContextEncoder(channels, image_size, hole_size, overlap_pred, nef, ngf, bottleneck,
                                        text_dim, text_proj, residual)
        self.discriminator = CentreDiscriminator(channels, hole_size, ndf, text_dim, text_proj)
        self.hole_size, self.patch_size, self.wtl2 = hole_size, hole_size + 2 * overlap_pred, wtl2
        self.flip, self.max_shift = flip, max_shift
        weight = torch.full((self.patch_size, self.patch_size), float(overlap_weight))
        weight[overlap_pred:overlap_pred + hole_size, overlap_pred:overlap_pred + hole_size] = 1.0
        self.register_buffer("l2_weight", weight[None, None], persistent=False)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        super().training_step(self.augment(batch), batch_idx)

    def generate(self, batch: dict, z: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted patch: the centre and its overlap ring."""
        return self.generator(batch["masked"], batch.get("caption_features"))

    def predict_centre(self, batch: dict) -> torch.Tensor:
        return centre_crop(self.generate(batch), self.hole_size)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """The centre's L2 on held-out images (a learning curve; nothing is tuned on it)."""
        error = F.mse_loss(to_unit(self.predict_centre(batch)), to_unit(self.target_centre(batch)))
        self.log("val/l2_centre", error, prog_bar=True, batch_size=batch["image"].shape[0])

    def discriminator_loss(self, batch: dict, fake: torch.Tensor):
        text = batch.get("caption_features")
        real_logits = self.discriminator(self.target_centre(batch), text)
        fake_logits = self.discriminator(centre_crop(fake, self.hole_size), text)
        loss = bce(real_logits, 1.0) + bce(fake_logits, 0.0)
        return loss, {"train/d_real": torch.sigmoid(real_logits).mean(),
                      "train/d_fake": torch.sigmoid(fake_logits).mean()}

    def generator_loss(self, batch: dict, fake: torch.Tensor):
        l2 = (self.l2_weight * (fake - self.target_centre(batch, self.patch_size)) ** 2).mean()
        adversarial = bce(self.discriminator(centre_crop(fake, self.hole_size), batch.get("caption_features")), 1.0)
        loss = self.wtl2 * l2 + (1.0 - self.wtl2) * adversarial
        return loss, {"train/l2": l2, "train/adversarial": adversarial}
