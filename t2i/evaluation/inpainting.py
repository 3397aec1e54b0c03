"""Scoring an inpainting model (evaluate.py for both inpainting tasks): L1, L2, PSNR and
SSIM of the predicted centres (torchmetrics, on images in [0, 1], data_range = 1, PSNR
averaged over images), a sharpness ratio that tells blur apart (the centres' mean
gradient magnitude over the ground truth's: 1 is as sharp as the photos, below 1
blurrier), the same for the trivial border-mean fill (`psnr_centre_baseline`, ...), FID
of the full reconstructions with Inception weights, and inpainting.png."""
from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from t2i.atomic_files import atomic_path
from t2i.data.batches import eval_batches
from t2i.evaluation.pictures import label_font
from t2i.evaluation.scores import image_quality
from t2i.evaluation.settings import EvalSettings
from t2i.images import to_pil, to_unit
from t2i.nets.inpainting import border_mean, centre_crop, paste_centre
from t2i.tensors import evaluating, to_device

log = logging.getLogger("t2i")


# ------------------------------------------------------------------- metrics
def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute horizontal + vertical pixel difference, per image."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean((1, 2, 3))
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean((1, 2, 3))
    return dx + dy


def reconstruction_metrics(pred: torch.Tensor, target: torch.Tensor, suffix: str = "_centre") -> dict:
    """pred, target: (N, C, H, W) in [-1, 1] -> {l1, l2, psnr, ssim, sharpness_ratio}+suffix."""
    if pred.shape != target.shape or pred.ndim != 4 or len(pred) == 0:
        raise ValueError(f"expected two equal non-empty (N, C, H, W) batches, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    p, t = to_unit(pred), to_unit(target)
    psnr = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return {
        f"l1{suffix}": float((p - t).abs().mean()),
        f"l2{suffix}": float(((p - t) ** 2).mean()),
        f"psnr{suffix}": float(psnr.clamp(max=100.0).mean()),  # a perfect image would be inf
        f"ssim{suffix}": float(structural_similarity_index_measure(p, t, data_range=1.0)),
        f"sharpness_ratio{suffix}": float(gradient_magnitude(p).mean() / gradient_magnitude(t).mean().clamp_min(1e-8)),
    }


# -------------------------------------------------------------------- runner
def predict_split(model, datamodule, n: int, batch_size: int) -> dict:
    """Centres predicted for n test images (spread over the split: `eval_batches`), with what
    evaluation compares."""
    out = {"masked": [], "image": [], "pred": [], "caption": []}
    with evaluating(model):
        for batch in eval_batches(datamodule, n, batch_size):
            out["pred"].append(model.predict_centre(to_device(batch, model.device)).float().cpu())
            out["masked"].append(batch["masked"])
            out["image"].append(batch["image"])
            out["caption"] += list(batch["caption"])
    return {k: v if k == "caption" else torch.cat(v) for k, v in out.items()}


def evaluate_inpainting(model, datamodule, settings, out_dir: Path) -> dict:
    """metrics.json's inpainting keys and inpainting.png, for any model with
    `predict_centre(batch)` and `hole_size`."""
    out_dir = Path(out_dir)
    settings = EvalSettings.of(settings)
    n, bs = settings.num_samples, settings.batch_size
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
    metrics.update(full_image_quality(full, settings, datamodule))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = settings.inpainting_rows
    inpainting_picture(split["masked"][:rows], full[:rows], split["image"][:rows], split["caption"][:rows],
                       out_dir / "inpainting.png")
    log.info("inpainting: psnr_centre %.2f dB vs border-mean fill %.2f dB on %d test images",
             metrics["psnr_centre"], metrics["psnr_centre_baseline"], len(target))
    return metrics


def full_image_quality(full: torch.Tensor, settings: EvalSettings, datamodule) -> dict:
    """FID/KID/IS of the full reconstructions (border + predicted centre) against the
    real images, only with Inception weights: a feature space for photos."""
    if not settings.inception_weights:
        return {"fid": None, "fid_note": "FID of the full reconstructions needs Inception weights: evaluate with "
                                         "eval.inception_weights=PATH/pt_inception-2015-12-05-6726825d.pth"}
    inception = settings.with_(feature_extractor="inception")
    # the reference: the same len(full) test images the centres were predicted for (both spread)
    out = image_quality(full, datamodule, inception, settings.cache, reference="test")
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
            canvas.paste(to_pil(image.expand(3, -1, -1)).resize((side, side), Image.NEAREST),
                         (gap + col * (side + gap), y))
        for k, line in enumerate(text):
            draw.text((gap, y + side + 2 + k * line_h), line, fill="black", font=font)
        y += h
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp)
