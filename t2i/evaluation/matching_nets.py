"""The text-image matching evaluator's networks: a dual encoder (a small image CNN, a
bidirectional GRU over token ids) whose embeddings meet in one normalised space, trained
with the symmetric contrastive InfoNCE loss (t2i.evaluation.matching trains and caches it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2i.evaluation.settings import TOWERS
from t2i.images import centre_square
from t2i.tensors import evaluating


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a (strided 1x1) shortcut, ReLU: ResNet's basic block."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class ColourHistogram(nn.Module):
    """A learned soft colour histogram: each pixel's RGB -> a softmax over `bins` learned
    colours (two 1x1 convolutions), averaged over the whole image and over its centre half.
    Captions name colours more than anything else, and a histogram carries over to classes
    never seen in training where a CNN trained on 82 classes' shapes may not."""

    def __init__(self, channels: int, bins: int = 32):
        super().__init__()
        self.pixel = nn.Sequential(nn.Conv2d(channels, 64, 1), nn.ReLU(True), nn.Conv2d(64, bins, 1))
        self.norm = nn.BatchNorm1d(2 * bins)
        self.num_features = 2 * bins

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        share = self.pixel(images).softmax(1)
        return self.norm(torch.cat([share.mean((2, 3)), centre_square(share, 0.5).mean((2, 3))], 1))


class ImageTower(nn.Module):
    """Images resized (area) to `image_size`, down to 4x4, global average pool (the FID
    features), linear. `residual`: a strided 3x3 stem then one residual block per halving
    (widths double up to 256); `plain`: the first judge's strided 4x4 convolutions.
    `colour`: the pooled features also carry a learned colour histogram (ColourHistogram)."""

    def __init__(self, channels: int, image_size: int, width: int = 32, dim: int = 256, tower: str = "plain",
                 colour: bool = False):
        super().__init__()
        if tower not in TOWERS:
            raise ValueError(f"eval.matching.tower must be one of {TOWERS}, got {tower!r}")
        self.image_size = image_size
        if tower == "residual":
            layers, c, s = [nn.Conv2d(channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width),
                            nn.ReLU(True)], width, image_size // 2
            while s > 4:
                w = min(2 * c, 256)
                layers.append(ResidualBlock(c, w, 2))
                c, s = w, s // 2
            layers.append(ResidualBlock(c, c, 1))
        else:
            layers, c, w, s = [], channels, width, image_size
            while s > 4:
                layers += [nn.Conv2d(c, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, True)]
                c, w, s = w, min(2 * w, 256), s // 2
            layers += [nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.colour = ColourHistogram(channels) if colour else None
        self.num_features = c + (self.colour.num_features if colour else 0)
        self.proj = nn.Linear(self.num_features, dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="area")
        pooled = self.body(images).mean((2, 3))
        return pooled if self.colour is None else torch.cat([pooled, self.colour(images)], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.features(images)), dim=-1)


class TextTower(nn.Module):
    """Token ids -> learned embeddings -> bidirectional GRU -> mean over words -> linear."""

    def __init__(self, vocab_size: int, word_dim: int = 128, dim: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.rnn = nn.GRU(word_dim, word_dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * word_dim, dim)

    def forward(self, token_ids: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        length = length.clamp(1, token_ids.shape[1]).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(token_ids), length, batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=token_ids.shape[1])
        mask = (torch.arange(token_ids.shape[1])[None, :] < length[:, None]).to(out.device, out.dtype)
        pooled = (out * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(self.proj(pooled), dim=-1)


class MatchingEvaluator(nn.Module):
    def __init__(self, channels: int, image_size: int, vocab_size: int, dim: int = 256, width: int = 32,
                 word_dim: int = 128, tower: str = "plain", colour: bool = False):  # image_size: the input side
        super().__init__()
        self.image = ImageTower(channels, image_size, width, dim, tower, colour)
        self.text = TextTower(vocab_size, word_dim, dim)
        self.log_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(1 / 0.07)))))
        self.num_features = self.image.num_features

    def loss(self, images: torch.Tensor, token_ids: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        img, txt = self.image(images), self.text(token_ids, length)
        logits = self.log_scale.clamp(max=4.6).exp() * img @ txt.T
        target = torch.arange(len(img), device=img.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    def embed_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        with evaluating(self):
            return torch.cat([self.image(images[s:s + batch_size].float()) for s in range(0, len(images), batch_size)])

    def embed_texts(self, token_ids: torch.Tensor, length: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        with evaluating(self):
            return torch.cat([self.text(token_ids[s:s + batch_size].long(), length[s:s + batch_size].long())
                              for s in range(0, len(token_ids), batch_size)])

    def image_features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        with evaluating(self):
            return torch.cat([self.image.features(images[s:s + batch_size].float())
                              for s in range(0, len(images), batch_size)])
