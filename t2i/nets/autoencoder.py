"""The source report's circle/square study nets: a deconvolution network ("generative CNN")
mapping a feature vector to an image, and a convolutional autoencoder whose decoder
is the same deconvolution network. DCGAN-shaped (4x4 kernels, stride 2, batch norm),
for 32x32 and 64x64 images."""
from __future__ import annotations

import torch
from torch import nn

from t2i.nets.dcgan import dcgan_init, num_stages

CODE_ACTIVATIONS = ("tanh", "none")


class DeconvDecoder(nn.Module):
    """features (B, F) -> image (B, C, S, S) in [-1, 1]. The first transposed
    convolution acts as a linear map from the vector to a 4x4 feature map (so it can
    place a shape anywhere), then each stage doubles the side."""

    def __init__(self, in_features: int, channels: int = 1, image_size: int = 32, width: int = 32):
        super().__init__()
        if in_features < 1:
            raise ValueError(f"the decoder needs at least one input feature, got {in_features}")
        n = num_stages(image_size)
        w = width * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(in_features, w, 4, 1, 0, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.in_features = in_features
        self.net.apply(dcgan_init)  # (not self.apply: dcgan_init matches "Conv" in class names)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.float().view(features.shape[0], -1, 1, 1))


class ConvEncoder(nn.Module):
    """image (B, C, S, S) -> code (B, bottleneck). With code_activation=tanh the code
    lies in (-1, 1), the range of the uniform noise a DCGAN is fed, so the two can be
    swapped for each other."""

    def __init__(self, bottleneck: int, channels: int = 1, image_size: int = 32, width: int = 32,
                 code_activation: str = "tanh"):
        super().__init__()
        if bottleneck < 1:
            raise ValueError(f"model.bottleneck must be >= 1, got {bottleneck}")
        if code_activation not in CODE_ACTIVATIONS:
            raise ValueError(f"model.code_activation must be one of {CODE_ACTIVATIONS}, got {code_activation!r}")
        n = num_stages(image_size)
        layers = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        w = width
        for _ in range(n - 1):
            layers += [nn.Conv2d(w, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True)]
            w *= 2
        layers += [nn.Conv2d(w, bottleneck, 4, 1, 0)]  # 4x4 -> 1x1: the code
        self.net = nn.Sequential(*layers)
        self.activation = nn.Tanh() if code_activation == "tanh" else nn.Identity()
        self.bottleneck = bottleneck
        self.net.apply(dcgan_init)  # (not self.apply: dcgan_init matches "Conv" in class names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activation(self.net(images).flatten(1))


class ConvAutoencoder(nn.Module):
    """image -> code (bottleneck) -> image; returns (reconstruction, code)."""

    def __init__(self, bottleneck: int = 100, channels: int = 1, image_size: int = 32, width: int = 32,
                 code_activation: str = "tanh"):
        super().__init__()
        self.encoder = ConvEncoder(bottleneck, channels, image_size, width, code_activation)
        self.decoder = DeconvDecoder(bottleneck, channels, image_size, width)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(images)
        return self.decoder(code), code
