"""Inpainting tasks: fill the hidden 32x32 centre of a 64x64 image from its border (and
caption features).

- `CNNAutoencoderInpainting`: the source report's autoencoder, MSE + Adam, automatic
  optimisation with a validation loss (`val/loss`) for early stopping.
- `ContextEncoderInpainting`: Pathak et al. 2016 on the shared GAN step:
  loss_G = wtl2 * L2 + (1 - wtl2) * adversarial, the L2 over the predicted patch with
  its `overlap_pred` ring weighted `overlap_weight` times; the discriminator sees the
  centre, conditioned on the caption when there is one.

Both evaluate the same way (`evaluate_inpainting`): metrics.json keys l1/l2/psnr/ssim
_centre, the same for the trivial border-mean fill (`psnr_centre_baseline`, ...), FID
of the full reconstructions with Inception weights, and inpainting.png.
"""
from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image, ImageDraw

from t2i.data.base import to_uint8
from t2i.data.coco import caption_feature_dim
from t2i.evaluation.pictures import label_font
from t2i.io import atomic_path
from t2i.metrics.reconstruction import to_unit
from t2i.nets.inpainting import (
    CentreDiscriminator,
    CNNAutoencoder,
    ContextEncoder,
    border_mean,
    centre_crop,
    hole_mask,
    paste_centre,
)
from t2i.tasks.gan import GANTask, bce

log = logging.getLogger("t2i")


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def augment_batch(batch: dict, hole_size: int, flip: bool, max_shift: int, seed: int, step: int) -> dict:
    """New (border, centre) pairs from the same photos: each image is mirrored
    left-right with probability 1/2 and shifted by up to `max_shift` pixels (reflected
    at the edges) before its centre is hidden again, so a small training set is much
    harder to memorise. Draws depend only on (seed, step): a resumed run augments as an
    uninterrupted one would have."""
    image = batch["image"]
    n, size = image.shape[0], image.shape[-1]
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
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

    def evaluate(self, datamodule, eval_cfg, out_dir) -> dict:
        return evaluate_inpainting(self, datamodule, eval_cfg, Path(out_dir))


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


# ---------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_split(model, datamodule, n: int, batch_size: int) -> dict:
    """Centres predicted for the first n test images, with what evaluation compares."""
    from t2i.evaluation import eval_batches

    was_training = model.training
    model.eval()
    out = {"masked": [], "image": [], "pred": [], "caption": []}
    for batch in eval_batches(datamodule, n, batch_size):
        out["pred"].append(model.predict_centre(to_device(batch, model.device)).float().cpu())
        out["masked"].append(batch["masked"])
        out["image"].append(batch["image"])
        out["caption"] += list(batch["caption"])
    model.train(was_training)
    return {k: v if k == "caption" else torch.cat(v) for k, v in out.items()}


def evaluate_inpainting(model, datamodule, eval_cfg, out_dir: Path) -> dict:
    from t2i.metrics.reconstruction import reconstruction_metrics

    n, bs = int(eval_cfg.num_samples), int(eval_cfg.batch_size)
    split = predict_split(model, datamodule, n, bs)
    hole = model.hole_size
    target = centre_crop(split["image"], hole)
    # the trivial fill: every hidden pixel gets the mean colour of the image's visible border
    baseline = border_mean(split["image"], hole).expand_as(target)
    metrics = reconstruction_metrics(split["pred"], target)
    metrics.update(reconstruction_metrics(baseline, target, suffix="_centre_baseline"))
    metrics.pop("sharpness_ratio_centre_baseline")  # a flat fill has no edges: always 0
    counts = {f"data/{k}": v for k, v in getattr(datamodule, "counts", {}).items()}
    metrics.update(num_test_images=len(target), captions=getattr(datamodule, "captions", None),
                   metric_pixel_range="[0, 1]", **counts)
    full = paste_centre(split["image"], split["pred"])
    metrics.update(full_image_quality(full, eval_cfg, datamodule))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = int(eval_cfg.get("inpainting_rows", 8))
    inpainting_picture(split["masked"][:rows], full[:rows], split["image"][:rows], split["caption"][:rows],
                       out_dir / "inpainting.png")
    log.info("inpainting: psnr_centre %.2f dB vs border-mean fill %.2f dB on %d test images",
             metrics["psnr_centre"], metrics["psnr_centre_baseline"], len(target))
    return metrics


def full_image_quality(full: torch.Tensor, eval_cfg, datamodule) -> dict:
    """FID/KID/IS of the full reconstructions (border + predicted centre) against the
    real images, only with Inception weights: a feature space for photos."""
    if not eval_cfg.get("inception_weights"):
        return {"fid": None, "fid_note": "FID of the full reconstructions needs Inception weights: evaluate with "
                                         "eval.inception_weights=PATH/pt_inception-2015-12-05-6726825d.pth"}
    from t2i.evaluation import image_quality

    cfg = OmegaConf.merge(OmegaConf.create(OmegaConf.to_container(eval_cfg)), {"feature_extractor": "inception"})
    # the reference: the same first len(full) test images the centres were predicted for
    out = image_quality(full, datamodule, cfg, eval_cfg.get("cache_dir") or ".cache", reference="test")
    out["fid_images"] = "full reconstructions (visible border + predicted centre) vs the real test images"
    return out


def inpainting_picture(masked: torch.Tensor, pred: torch.Tensor, truth: torch.Tensor, captions: list[str],
                       path: Path, scale: int = 2, gap: int = 6) -> None:
    """One row per image: masked input | prediction | ground truth, caption underneath."""
    font = label_font()
    side = masked.shape[-1] * scale
    width = 3 * side + 4 * gap
    wrap = max(20, width // 6)
    line_h = 13
    header = line_h + gap
    rows = []
    for i in range(len(masked)):
        text = textwrap.wrap(captions[i] or "(no caption)", wrap)[:3]
        rows.append((i, text, side + gap + line_h * len(text) + gap))
    canvas = Image.new("RGB", (width, header + sum(h for _, _, h in rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(("masked input", "prediction", "ground truth")):
        draw.text((gap + col * (side + gap), 2), title, fill="black", font=font)
    y = header
    for i, text, h in rows:
        for col, image in enumerate((masked[i], pred[i], truth[i])):
            tile = Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy()).resize((side, side), Image.NEAREST)
            canvas.paste(tile, (gap + col * (side + gap), y))
        for k, line in enumerate(text):
            draw.text((gap, y + side + 2 + k * line_h), line, fill="black", font=font)
        y += h
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp)
