"""Inpainting nets: the masked 64x64 image (+ a caption feature vector, joined at the
bottleneck) -> the hidden centre.

- `CNNAutoencoder`: the source report's model: 3x3 convolutions with batch norm and ReLU, 2x2
  max pooling down to 4x4, 2x nearest upsampling back up to the 32x32 centre.
- `ContextEncoder`: Pathak et al. 2016: strided 4x4 convolutions down to a 1x1
  bottleneck, transposed convolutions up to the centre plus an `overlap` ring.
- `CentreDiscriminator`: a DCGAN discriminator on the centre, conditioned on the caption.

With `residual=True` the output is tanh(raw + atanh(m)), m the mean colour of the
visible border: a fresh net (raw ~ 0) already paints the trivial mean-colour fill, and
training only has to learn what differs from it.
"""
from __future__ import annotations

import torch
from torch import nn

from t2i.nets.dcgan import Discriminator, dcgan_init


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    start = (images.shape[-1] - size) // 2
    return images[..., start:start + size, start:start + size]


def hole_mask(image_size: int, hole_size: int, device=None) -> torch.Tensor:
    """(S, S) bool, True inside the hidden centre."""
    mask = torch.zeros(image_size, image_size, dtype=torch.bool, device=device)
    start = (image_size - hole_size) // 2
    mask[start:start + hole_size, start:start + hole_size] = True
    return mask


def border_mean(images: torch.Tensor, hole_size: int) -> torch.Tensor:
    """(B, C, 1, 1): each image's mean colour outside the hidden centre."""
    visible = (~hole_mask(images.shape[-1], hole_size, images.device)).to(images.dtype)
    return (images * visible).sum((2, 3), keepdim=True) / visible.sum()


def paste_centre(images: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """The images with their centre replaced (full reconstructions)."""
    out = images.clone()
    start = (images.shape[-1] - centre.shape[-1]) // 2
    out[..., start:start + centre.shape[-1], start:start + centre.shape[-1]] = centre
    return out


def output_head(raw: torch.Tensor, masked: torch.Tensor, hole_size: int, residual: bool) -> torch.Tensor:
    if not residual:
        return torch.tanh(raw)
    base = border_mean(masked, hole_size).clamp(-0.99, 0.99)
    return torch.tanh(raw + torch.atanh(base))


def zero_last(decoder: nn.Sequential, residual: bool) -> None:
    """With the residual head, a zero last layer makes the fresh net paint exactly the
    border's mean colour; its weights still get gradients, so learning starts at once."""
    if residual:
        nn.init.zeros_(decoder[-1].weight)
        nn.init.zeros_(decoder[-1].bias)


class TextProjection(nn.Module):
    """Caption features (B, D) -> (B, out): the part of the bottleneck the caption fills."""

    def __init__(self, text_dim: int, out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(text_dim, out), nn.ReLU(True))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.float())


def _check_text(text_dim: int, features: torch.Tensor | None) -> None:
    if text_dim and features is None:
        raise ValueError(f"this net was built for {text_dim}-dimensional caption features and got none: "
                         "the batch needs `caption_features` (data.captions=bow or word2vec)")


class CNNAutoencoder(nn.Module):
    """masked image (B, C, 64, 64) [+ caption features (B, D)] -> centre (B, C, 32, 32)."""

    def __init__(self, channels: int = 3, image_size: int = 64, hole_size: int = 32, width: int = 32,
                 text_dim: int = 0, text_proj: int = 128, residual: bool = True):
        super().__init__()
        if image_size != 64 or hole_size != 32:
            raise ValueError(f"CNNAutoencoder maps 64x64 images to their 32x32 centre, got {image_size}/{hole_size}")
        widths = [width, width * 2, width * 4, width * 8]
        down, c = [], channels
        for w in widths:  # 64 -> 32 -> 16 -> 8 -> 4
            down += [self._conv(c, w), self._conv(w, w), nn.MaxPool2d(2)]
            c = w
        self.encoder = nn.Sequential(*down)
        self.text = TextProjection(text_dim, text_proj) if text_dim else None
        self.join = self._conv(c + (text_proj if text_dim else 0), c, kernel=1)
        up = []
        for w in reversed(widths[:3]):  # 4 -> 8 -> 16 -> 32
            up += [nn.Upsample(scale_factor=2, mode="nearest"), self._conv(c, w), self._conv(w, w)]
            c = w
        self.decoder = nn.Sequential(*up, nn.Conv2d(c, channels, 3, 1, 1))
        self.text_dim, self.hole_size, self.residual = text_dim, hole_size, residual
        self.apply(dcgan_init)
        zero_last(self.decoder, residual)

    @staticmethod
    def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(True))

    def forward(self, masked: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        _check_text(self.text_dim, text)
        h = self.encoder(masked)
        if self.text is not None:
            t = self.text(text)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            h = torch.cat([h, t], 1)
        return output_head(self.decoder(self.join(h)), masked, self.hole_size, self.residual)


class ContextEncoder(nn.Module):
    """masked image (B, C, 64, 64) [+ caption features] -> patch (B, C, P, P) with
    P = hole_size + 2 * overlap: the centre and a ring of `overlap` visible pixels."""

    def __init__(self, channels: int = 3, image_size: int = 64, hole_size: int = 32, overlap: int = 4,
                 nef: int = 64, ngf: int = 64, bottleneck: int = 512, text_dim: int = 0, text_proj: int = 128,
                 residual: bool = True):
        super().__init__()
        patch = hole_size + 2 * overlap
        if image_size != 64 or patch % 8 or patch > image_size:
            raise ValueError(f"ContextEncoder needs 64x64 images and hole_size + 2 * overlap_pred divisible by 8 "
                             f"(e.g. 32 + 2*4 = 40), got image {image_size}, patch {patch}")
        layers, c = [nn.Conv2d(channels, nef, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], nef
        for _ in range(3):  # 32 -> 16 -> 8 -> 4
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [nn.Conv2d(c, bottleneck, 4, 1, 0, bias=False), nn.BatchNorm2d(bottleneck),
                   nn.LeakyReLU(0.2, True)]  # 4 -> 1
        self.encoder = nn.Sequential(*layers)
        self.text = TextProjection(text_dim, text_proj) if text_dim else None
        c, w = bottleneck + (text_proj if text_dim else 0), ngf * 4
        up = [nn.ConvTranspose2d(c, w, patch // 8, 1, 0, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
        for _ in range(2):  # P/8 -> P/4 -> P/2
            up += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        self.decoder = nn.Sequential(*up, nn.ConvTranspose2d(w, channels, 4, 2, 1))  # -> P
        self.text_dim, self.hole_size, self.overlap, self.residual = text_dim, hole_size, overlap, residual
        self.apply(dcgan_init)
        zero_last(self.decoder, residual)

    def forward(self, masked: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        _check_text(self.text_dim, text)
        h = self.encoder(masked)
        if self.text is not None:
            h = torch.cat([h, self.text(text)[:, :, None, None]], 1)
        return output_head(self.decoder(h), masked, self.hole_size, self.residual)


class CentreDiscriminator(nn.Module):
    """centre (B, C, 32, 32) [+ caption features] -> one logit each. The caption is
    projected and joined at the 4x4 feature map (GAN-CLS style)."""

    def __init__(self, channels: int = 3, hole_size: int = 32, ndf: int = 64, text_dim: int = 0,
                 text_proj: int = 128):
        super().__init__()
        self.text = nn.Sequential(nn.Linear(text_dim, text_proj), nn.LeakyReLU(0.2, True)) if text_dim else None
        self.net = Discriminator(channels, ndf, hole_size, cond_dim=text_proj if text_dim else 0)
        self.text_dim = text_dim

    def forward(self, centre: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        _check_text(self.text_dim, text)
        return self.net(centre, self.text(text.float()) if self.text is not None else None)
