"""Sentence encoders over word vectors, and the GAN-CLS generator/discriminator that
are conditioned on them (Reed et al. 2016, "Generative Adversarial Text to Image
Synthesis").

Input everywhere: `word_vectors` (B, L, D), zero rows for padding, and `length` (B,)
with the real word count. A sentence embedding is either the mean of the real words'
vectors (no parameters; enough when word order carries no meaning, as in templated
captions) or the last hidden state of an LSTM over them. Each net owns its own
encoder and 128-d projection, as in Reed et al., so the generator's and the
discriminator's parameters stay disjoint (each optimiser updates only its own net).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from t2i.nets.dcgan import Discriminator, Generator, dcgan_init

ENCODERS = ("mean", "lstm")


def word_mask(length: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool: True at the real words."""
    return torch.arange(max_len, device=length.device)[None, :] < length[:, None]


class MeanEncoder(nn.Module):
    """Mean of the real words' vectors; padding rows do not count."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.out_dim = embedding_dim

    def forward(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        mask = word_mask(length, word_vectors.shape[1]).to(word_vectors.dtype)
        total = (word_vectors * mask[..., None]).sum(1)
        return total / length.clamp_min(1).to(word_vectors.dtype)[:, None]


class LSTMEncoder(nn.Module):
    """Last hidden state of an LSTM run over the real words only (packed sequences),
    so padding never changes the embedding."""

    def __init__(self, embedding_dim: int, hidden: int = 256, layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(embedding_dim, hidden, num_layers=layers, batch_first=True)
        self.out_dim = hidden

    def forward(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(word_vectors, length.clamp_min(1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]


def sentence_encoder(kind: str, embedding_dim: int, hidden: int = 256) -> nn.Module:
    if kind == "mean":
        return MeanEncoder(embedding_dim)
    if kind == "lstm":
        return LSTMEncoder(embedding_dim, hidden)
    raise ValueError(f"model.text_encoder must be one of {ENCODERS}, got {kind!r}")


class TextConditioner(nn.Module):
    """Sentence embedding -> Linear [-> BatchNorm] -> LeakyReLU(0.2): Reed et al.'s
    compression of the text embedding to a small vector (128-d) that is joined to z or
    to D's features. `embed` and `project` are separate so GAN-INT can interpolate.

    `batch_norm`: word2vec vectors of words that fill the same slot ("circle"/"square",
    "small"/"large") point almost the same way (cosine ~0.98 even after per-dimension
    standardisation), so what tells two captions apart is a small part of each
    projected value, and a net fed the raw projection learns to read it very slowly.
    Batch norm rescales every projected dimension by its spread *across the batch's
    captions*, which is exactly the part that differs between them."""

    def __init__(self, embedding_dim: int, kind: str = "mean", out_dim: int = 128, hidden: int = 256,
                 batch_norm: bool = True):
        super().__init__()
        self.encoder = sentence_encoder(kind, embedding_dim, hidden)
        norm = [nn.BatchNorm1d(out_dim)] if batch_norm else []
        self.project = nn.Sequential(nn.Linear(self.encoder.out_dim, out_dim), *norm, nn.LeakyReLU(0.2, True))
        self.out_dim = out_dim
        self.project.apply(dcgan_init)

    def embed(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.encoder(word_vectors, length)

    def forward(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.project(self.embed(word_vectors, length))


class TextConditionedGenerator(nn.Module):
    """z (B, nz) + caption -> image: the projected sentence embedding is concatenated
    with z and fed to a DCGAN generator."""

    def __init__(self, nz: int, embedding_dim: int, nc: int, image_size: int, ngf: int = 64,
                 text_encoder: str = "mean", text_dim: int = 128, text_hidden: int = 256,
                 text_batch_norm: bool = True, upsample: str = "deconv"):
        super().__init__()
        self.text = TextConditioner(embedding_dim, text_encoder, text_dim, text_hidden, text_batch_norm)
        self.net = Generator(nz, ngf, nc, image_size, cond_dim=text_dim, upsample=upsample)

    def forward(self, z: torch.Tensor, word_vectors: torch.Tensor | None = None, length: torch.Tensor | None = None,
                sentence: torch.Tensor | None = None) -> torch.Tensor:
        """Give either (word_vectors, length) or a ready `sentence` embedding (B, E)."""
        if sentence is None:
            sentence = self.text.embed(word_vectors, length)
        return self.net(z, self.text.project(sentence))


class MatchingDiscriminator(nn.Module):
    """image + caption -> one logit: "is this a real image that matches this caption?"
    The projected sentence is tiled over D's 4x4 features and joined before the last
    convolutions. `features` and `score` are separate so a real image's features can
    be computed once and scored against both its right and a wrong caption."""

    def __init__(self, nc: int, embedding_dim: int, image_size: int, ndf: int = 64,
                 text_encoder: str = "mean", text_dim: int = 128, text_hidden: int = 256,
                 text_batch_norm: bool = True):
        super().__init__()
        self.text = TextConditioner(embedding_dim, text_encoder, text_dim, text_hidden, text_batch_norm)
        self.net = Discriminator(nc, ndf, image_size, cond_dim=text_dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(images)

    def score(self, features: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        cond = self.text.project(sentence)
        tiled = cond[:, :, None, None].expand(-1, -1, features.shape[2], features.shape[3])
        return self.net.head(torch.cat([features, tiled], 1)).view(-1)

    def forward(self, images: torch.Tensor, word_vectors: torch.Tensor | None = None,
                length: torch.Tensor | None = None, sentence: torch.Tensor | None = None) -> torch.Tensor:
        if sentence is None:
            sentence = self.text.embed(word_vectors, length)
        return self.score(self.features(images), sentence)
