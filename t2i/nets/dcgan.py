"""DCGAN generator and discriminator (Radford et al. 2015), as in pytorch/examples,
for 32x32 and 64x64 images, with an optional condition vector (Reed et al. 2016)."""
from __future__ import annotations

import torch
from torch import nn

SIZES = {32: 3, 64: 4}  # image side -> number of 2x up/down-sampling stages after 4x4


def num_stages(image_size: int) -> int:
    """The number of 2x stages between 4x4 and image_size (DCGAN and the autoencoder share it)."""
    if image_size not in SIZES:
        raise ValueError(f"DCGAN supports image sizes {sorted(SIZES)}, got {image_size}")
    return SIZES[image_size]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init: conv ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02), bias 0."""
    name = type(module).__name__
    if "Conv" in name or name == "Linear":
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


UPSAMPLING = ("deconv", "nearest")


def _up(c_in: int, c_out: int, how: str) -> list[nn.Module]:
    """One 2x up-sampling stage."""
    if how == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]


class Generator(nn.Module):
    """z (B, nz) [+ condition (B, cond_dim)] -> image (B, nc, S, S) in [-1, 1].
    `upsample`: "deconv" (stride-2 transposed convolutions, the paper's) or "nearest"
    (nearest-neighbour 2x + 3x3 convolution, Odena et al. 2016): transposed convolutions
    leave a checkerboard that breaks thin lines into dots (the shapes' 1-pixel outlines)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64, cond_dim: int = 0,
                 upsample: str = "deconv"):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        n = num_stages(image_size)
        width = ngf * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(nz + cond_dim, width, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [*_up(width, width // 2, upsample), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [*_up(width, nc, upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.nz, self.cond_dim = nz, cond_dim
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], 1)
        return self.net(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """image (B, nc, S, S) [+ condition (B, cond_dim)] -> one logit per image.
    A condition is tiled over the 4x4 feature map and joined before the last
    convolution, as in GAN-CLS."""

    def __init__(self, nc: int = 3, ndf: int = 64, image_size: int = 64, cond_dim: int = 0):
        super().__init__()
        n = num_stages(image_size)
        layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        self.features = nn.Sequential(*layers)
        head = [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        if cond_dim:
            head = [nn.Conv2d(width + cond_dim, width, 1, 1, 0, bias=False),
                    nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)] + head
        self.head = nn.Sequential(*head)
        self.cond_dim = cond_dim
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        if cond is not None:
            h = torch.cat([h, cond[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], 1)
        return self.head(h).view(-1)
