"""A convolutional LSTM (Shi et al. 2015) and the seed's conditional generator built
around it (`cond_dcgan_lstm`):

    word_t (+ z) --DCGAN word generator--> map_t (S x S) --ConvLSTM--> h_t --1x1 conv, tanh--> output_t

Every word of the caption is drawn as a full-resolution map by one shared DCGAN
generator (a projection and three fractionally-strided convolutions); the maps go in
caption order through a ConvLSTM, whose gates are convolutions, so its state stays an
S x S picture and each step can move, grow or fill what the previous words drew. The
output after the last word is the caption's image; the earlier outputs are partial
drawings that the discriminator also judges.
"""
from __future__ import annotations

import torch
from torch import nn

from t2i.nets.dcgan import dcgan_init
from t2i.nets.text_encoders import word_mask


class ConvLSTMCell(nn.Module):
    """One step: the four gates come from one convolution over [input, hidden]."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTM kernel_size must be odd (same-size padding), got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)
        with torch.no_grad():  # forget-gate bias 1: remember by default (Jozefowicz et al. 2015)
            self.gates.bias.zero_()
            self.gates.bias[hidden_channels:2 * hidden_channels].fill_(1.0)

    def initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = x.new_zeros(x.shape[0], self.hidden_channels, x.shape[2], x.shape[3])
        return zeros, zeros

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvLSTM(nn.Module):
    """(B, T, C, H, W) -> hidden states (B, T, hidden, H, W)."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden_channels, kernel_size)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        state = self.cell.initial_state(inputs[:, 0])
        outputs = []
        for t in range(inputs.shape[1]):
            h, state = self.cell(inputs[:, t], state)
            outputs.append(h)
        return torch.stack(outputs, 1)


class WordGenerator(nn.Module):
    """DCGAN generator for one word: [word vector, z] -> projection to (4·ngf, S/8, S/8)
    -> three fractionally-strided convolutions -> (map_channels, S, S) in [-1, 1]."""

    def __init__(self, in_dim: int, image_size: int, ngf: int = 32, map_channels: int = 8):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"cond_dcgan_lstm needs an image size divisible by 8, got {image_size}")
        self.start, width = image_size // 8, ngf * 4
        self.project = nn.Sequential(nn.Linear(in_dim, width * self.start ** 2, bias=False))
        self.body = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True),
            nn.ConvTranspose2d(width // 2, width // 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(width // 4, map_channels, 4, 2, 1, bias=False), nn.Tanh(),
        )
        self.width = width
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x).view(x.shape[0], self.width, self.start, self.start)
        return self.body(h)


class WordSequenceGenerator(nn.Module):
    """The seed's generator. forward(z, word_vectors, length) -> every step's output
    (B, T, nc, S, S), T = the longest caption in the batch; output `length-1` of each
    caption is its image (`final`), the ones before it are partial drawings."""

    def __init__(self, nz: int, embedding_dim: int, nc: int, image_size: int, ngf: int = 32,
                 map_channels: int = 8, hidden_channels: int = 16, kernel_size: int = 3):
        super().__init__()
        self.words = WordGenerator(embedding_dim + nz, image_size, ngf, map_channels)
        self.lstm = ConvLSTM(map_channels, hidden_channels, kernel_size)
        self.to_image = nn.Sequential(nn.Conv2d(hidden_channels, nc, 1), nn.Tanh())
        self.nz, self.nc, self.image_size, self.map_channels = nz, nc, image_size, map_channels

    def forward(self, z: torch.Tensor, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        steps = int(length.max())
        word_vectors = word_vectors[:, :steps]
        mask = word_mask(length, steps)
        # Draw only the real words (padding rows would skew the batch-norm statistics);
        # every word of a caption shares that caption's z.
        words = torch.cat([word_vectors[mask], z[:, None, :].expand(-1, steps, -1)[mask]], 1)
        maps = word_vectors.new_zeros(*mask.shape, self.map_channels, self.image_size, self.image_size)
        maps[mask] = self.words(words).to(maps.dtype)
        hidden = self.lstm(maps)
        b, t = hidden.shape[:2]
        return self.to_image(hidden.flatten(0, 1)).view(b, t, self.nc, self.image_size, self.image_size)

    @staticmethod
    def final(outputs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Each caption's output after its last word: (B, nc, S, S)."""
        return outputs[torch.arange(len(length), device=outputs.device), length - 1]

    @staticmethod
    def partial(outputs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The outputs after words 1..n-1 of every caption, flattened: (sum(n-1), nc, S, S)."""
        steps = outputs.shape[1]
        mask = word_mask(length - 1, steps)
        return outputs[mask]
