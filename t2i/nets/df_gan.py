"""DF-GAN's nets (Tao et al. 2022, "DF-GAN: A Simple and Effective Baseline for
Text-to-Image Synthesis"), after the authors' code (github.com/tobran/DF-GAN):
one generator and one discriminator, no stacked stages.

- Generator: z -> Linear -> (8·ngf, 4, 4) -> up-blocks (`GBlock`: nearest 2x upsample,
  then a residual branch DFBlock -> conv3x3 -> DFBlock -> conv3x3 beside a 1x1 shortcut)
  -> LeakyReLU -> conv3x3 -> tanh. Every DFBlock (deep fusion) stacks two text-conditioned
  affine transforms `γ(c)·h + β(c)`, each followed by LeakyReLU; γ and β come from small
  MLPs (Linear -> ReLU -> Linear) over the condition c = [z, sentence], as in the code.
- Discriminator: conv3x3 -> down-blocks (`DBlock`: a 4x4 stride-2 conv branch scaled by
  a learned γ that starts at 0, beside a 1x1 conv + average-pool shortcut) -> (8·ndf, 4, 4);
  `MatchingHead` tiles the sentence over that map and judges the pair with conv3x3 ->
  LeakyReLU -> conv4x4 (one-way output: one logit per pair). No batch norm in D: the
  gradient penalty needs each logit to depend on its own image only.

Input text is (word_vectors (B, L, D), length (B,)) as everywhere in t2i; each net owns
its own sentence encoder and projection (`TextConditioner`), so G's and D's parameters
stay disjoint (the paper shares one frozen, pretrained DAMSM encoder instead).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2i.nets.text_encoders import TextConditioner


def _levels(image_size: int) -> int:
    """Number of 2x up/down-blocks between 4x4 and the image side."""
    levels = int(math.log2(image_size)) - 2 if image_size > 0 else -1
    if levels < 1 or 4 * 2 ** levels != image_size:
        raise ValueError(f"DF-GAN needs an image size of 4·2^k (32, 64, 128, 256), got {image_size}; "
                         "set data.image_size")
    return levels


def widths(base: int, image_size: int) -> list[int]:
    """Channel widths from the image side up to 4x4: base·min(2^i, 8), as the authors' code."""
    return [base * min(2 ** i, 8) for i in range(_levels(image_size) + 1)]


class Affine(nn.Module):
    """h -> γ(c)·h + β(c), per channel. The last Linear of each MLP starts at zero with
    γ's bias at 1, so at initialisation the transform is the identity (as the authors')."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(True), nn.Linear(channels, channels))
        self.beta = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(True), nn.Linear(channels, channels))
        for mlp, bias in ((self.gamma, 1.0), (self.beta, 0.0)):
            nn.init.zeros_(mlp[2].weight)
            nn.init.constant_(mlp[2].bias, bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.gamma(cond)[:, :, None, None] * h + self.beta(cond)[:, :, None, None]


class DFBlock(nn.Module):
    """Deep text-image fusion: two stacked affine transforms, each with LeakyReLU(0.2)."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.affine0, self.affine1 = Affine(cond_dim, channels), Affine(cond_dim, channels)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.affine0(h, cond), 0.2)
        return F.leaky_relu(self.affine1(h, cond), 0.2)


class GBlock(nn.Module):
    """(B, in, S, S) -> (B, out, 2S, 2S): upsample, then shortcut + fused residual."""

    def __init__(self, cond_dim: int, in_ch: int, out_ch: int):
        super().__init__()
        self.fuse1, self.conv1 = DFBlock(cond_dim, in_ch), nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.fuse2, self.conv2 = DFBlock(cond_dim, out_ch), nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2)
        residual = self.conv2(self.fuse2(self.conv1(self.fuse1(h, cond)), cond))
        return self.shortcut(h) + residual


class DBlock(nn.Module):
    """(B, in, S, S) -> (B, out, S/2, S/2): pooled shortcut + γ·residual, γ learned from
    `gamma_init` (the paper's code: 0, so D starts as a stack of pooled 1x1 convs, linear
    in the image, and grows its residual branches)."""

    def __init__(self, in_ch: int, out_ch: int, gamma_init: float = 0.0):
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
                                      nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.LeakyReLU(0.2, True))
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.gamma = nn.Parameter(torch.full((1,), float(gamma_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.shortcut(x), 2) + self.gamma * self.residual(x)


class DFGenerator(nn.Module):
    """z (B, nz) + caption -> image (B, nc, S, S) in [-1, 1]."""

    def __init__(self, nz: int, embedding_dim: int, nc: int, image_size: int, ngf: int = 32,
                 text_encoder: str = "mean", text_dim: int = 256, text_hidden: int = 256,
                 text_batch_norm: bool = True):
        super().__init__()
        chans = widths(ngf, image_size)[::-1]  # 4x4 first
        self.text = TextConditioner(embedding_dim, text_encoder, text_dim, text_hidden, text_batch_norm)
        self.fc = nn.Linear(nz, chans[0] * 16)
        self.blocks = nn.ModuleList(GBlock(nz + text_dim, a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.to_image = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(chans[-1], nc, 3, 1, 1), nn.Tanh())
        self.nz, self.start_channels = nz, chans[0]

    def forward(self, z: torch.Tensor, word_vectors: torch.Tensor | None = None, length: torch.Tensor | None = None,
                sentence: torch.Tensor | None = None) -> torch.Tensor:
        """Give either (word_vectors, length) or a ready sentence embedding (B, E) (the
        encoder's output, before projection: `self.text.embed`)."""
        if sentence is None:
            sentence = self.text.embed(word_vectors, length)
        # the authors' code conditions every affine on [z, sentence], not the sentence alone
        cond = torch.cat([z, self.text.project(sentence)], 1)
        h = self.fc(z).view(z.shape[0], self.start_channels, 4, 4)
        for block in self.blocks:
            h = block(h, cond)
        return self.to_image(h)


class MatchingHead(nn.Module):
    """D's 4x4 features + sentence vector -> one logit per pair. `projection=True` adds
    <W·sentence, pooled features> (Miyato & Koyama 2018's projection discriminator; not in
    DF-GAN): a term that must change when one word of the caption changes."""

    def __init__(self, channels: int, text_dim: int, ndf: int, projection: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + text_dim, 2 * ndf, 3, 1, 1, bias=False), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(2 * ndf, 1, 4, 1, 0, bias=False))
        self.project = nn.Linear(text_dim, channels, bias=False) if projection else None

    def forward(self, features: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        tiled = sentence[:, :, None, None].expand(-1, -1, features.shape[2], features.shape[3])
        logit = self.net(torch.cat([features, tiled], 1)).view(-1)
        if self.project is not None:
            logit = logit + (self.project(sentence) * features.mean((2, 3))).sum(1)
        return logit


class DFDiscriminator(nn.Module):
    """image + caption -> one logit. `features`, `sentence` and `score` are separate so
    a real image's features are computed once and judged against its right and a wrong
    caption, and so the gradient penalty can differentiate through the sentence vector."""

    def __init__(self, nc: int, embedding_dim: int, image_size: int, ndf: int = 32,
                 text_encoder: str = "mean", text_dim: int = 256, text_hidden: int = 256,
                 text_batch_norm: bool = True, gamma_init: float = 0.0, projection: bool = False):
        super().__init__()
        chans = widths(ndf, image_size)
        self.text = TextConditioner(embedding_dim, text_encoder, text_dim, text_hidden, text_batch_norm)
        self.stem = nn.Conv2d(nc, chans[0], 3, 1, 1)
        self.blocks = nn.Sequential(*(DBlock(a, b, gamma_init) for a, b in zip(chans[:-1], chans[1:])))
        self.head = MatchingHead(chans[-1], text_dim, ndf, projection)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(images))

    def sentence(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The projected sentence vector the head reads (what MA-GP differentiates by)."""
        return self.text(word_vectors, length)

    def score(self, features: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        return self.head(features, sentence)

    def forward(self, images: torch.Tensor, word_vectors: torch.Tensor | None = None,
                length: torch.Tensor | None = None, sentence: torch.Tensor | None = None) -> torch.Tensor:
        """`sentence`: an already projected sentence vector (`self.sentence(...)`)."""
        if sentence is None:
            sentence = self.sentence(word_vectors, length)
        return self.score(self.features(images), sentence)
