"""Reconstruction quality of inpainted centres: L1, L2, PSNR and SSIM (torchmetrics),
on images in [0, 1] (data_range = 1), PSNR averaged over images; plus a sharpness
ratio that tells blur apart (the centres' mean gradient magnitude over the ground
truth's: 1 is as sharp as the photos, below 1 blurrier)."""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (clamped), float32."""
    return (images.float().clamp(-1, 1) + 1) / 2


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
