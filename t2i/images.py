"""Image tensors between the ranges the project uses: every generator outputs float in
[-1, 1] (tanh); pictures and metrics want uint8 [0, 255] or float [0, 1]. One function per
conversion, used everywhere, so a picture and a metric see the same pixels. Imports
nothing from t2i: every layer may use it."""
from __future__ import annotations

import torch
from PIL import Image
from torchvision.utils import make_grid


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range every generator outputs (tanh)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (rounded, clamped)."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float32 [0, 1] (clamped): what torchvision's save_image and the
    pixel metrics (PSNR, SSIM) take."""
    return (images.float().clamp(-1, 1) + 1) / 2


def centre_square(images: torch.Tensor, fraction: float) -> torch.Tensor:
    """The centre `fraction` of each side (at least 1 pixel) of (..., H, W) images."""
    h, w = images.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return images[..., top:top + ch, left:left + cw]


def to_pil(image: torch.Tensor) -> Image.Image:
    """One (C, H, W) image in [-1, 1] -> a PIL image (grey "L" for one channel, else RGB)."""
    array = to_uint8(image).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """(N, C, H, W) images in [-1, 1] -> one [0, 1] grid image (square by default)."""
    nrow = nrow or max(1, int(len(images) ** 0.5))
    return make_grid(to_unit(images), nrow=nrow, padding=2, pad_value=0.5)
