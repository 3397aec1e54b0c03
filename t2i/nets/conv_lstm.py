"""A convolutional LSTM (Shi et al. 2015) and the source report's conditional generator built
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

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, forget_bias: float = 1.0):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTM kernel_size must be odd (same-size padding), got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)
        with torch.no_grad():  # forget-gate bias > 0: remember by default (Jozefowicz et al. 2015)
            self.gates.bias.zero_()
            self.gates.bias[hidden_channels:2 * hidden_channels].fill_(forget_bias)

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
    """Packed sequences -> hidden states, packed the same way.

    `inputs` (N, C, H, W) holds every real step of every sequence, sequence by sequence
    (`padded[word_mask(length, T)]`, N = sum(length)). Sequences run longest first, and
    step t only over those still going: padding is never computed. That is the same
    maths for every step that is used, and with Flickr's caption lengths (10.8 words on
    average, ~22 for a batch's longest) the generator's forward + backward takes 0.6x the
    CPU time of running every padded step (docs/scaling.md). Computing the gates' input
    part for all steps in one convolution before the loop was measured too: 1.6x slower
    on a CPU (the (N, 4·hidden, S, S) pre-activations are gathered step by step)."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, forget_bias: float = 1.0):
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden_channels, kernel_size, forget_bias)

    @staticmethod
    def step_rows(length: torch.Tensor) -> list[torch.Tensor]:
        """For each step t, the rows of the packed input that step t reads: sequences with
        more than t steps, longest first (a prefix of the same order at every step)."""
        order = length.argsort(descending=True, stable=True)
        start = length.cumsum(0) - length  # each sequence's first row
        live = (length[:, None] > torch.arange(int(length.max()), device=length.device)).sum(0).tolist()
        return [start[order[:n]] + t for t, n in enumerate(live)]

    def forward(self, inputs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        rows = self.step_rows(length)
        state = self.cell.initial_state(inputs[rows[0]])
        hidden = []
        for r in rows:  # the state's first len(r) rows are the sequences still going
            h, state = self.cell(inputs[r], (state[0][:len(r)], state[1][:len(r)]))
            hidden.append(h)
        out = inputs.new_empty(inputs.shape[0], self.cell.hidden_channels, *inputs.shape[2:])
        return out.index_put((torch.cat(rows),), torch.cat(hidden))  # back to sequence-by-sequence rows


class WordGenerator(nn.Module):
    """DCGAN generator for one word: [word vector, z] -> projection to (4·ngf, S/8, S/8)
    -> three fractionally-strided convolutions -> (map_channels, S, S) in [-1, 1].
    `batch_norm=False` drops its batch norms (a probe: docs/text_to_image.md)."""

    def __init__(self, in_dim: int, image_size: int, ngf: int = 32, map_channels: int = 8, batch_norm: bool = True):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"cond_dcgan_lstm draws words at a side divisible by 8, got {image_size}")
        self.start, width = image_size // 8, ngf * 4
        norm = nn.BatchNorm2d if batch_norm else (lambda _: nn.Identity())
        self.project = nn.Sequential(nn.Linear(in_dim, width * self.start ** 2, bias=False))
        self.body = nn.Sequential(
            norm(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), norm(width // 2), nn.ReLU(True),
            nn.ConvTranspose2d(width // 2, width // 4, 4, 2, 1, bias=False), norm(width // 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(width // 4, map_channels, 4, 2, 1, bias=False), nn.Tanh(),
        )
        self.width = width
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x).view(x.shape[0], self.width, self.start, self.start)
        return self.body(h)


class CumulativeMean(nn.Module):
    """A probe in the ConvLSTM's place: state t is the mean of the word maps 1..t (no memory
    to learn, no gates), packed like `ConvLSTM`."""

    def forward(self, inputs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        steps = int(length.max())
        mask = word_mask(length, steps)
        padded = inputs.new_zeros(len(length), steps, *inputs.shape[1:]).index_put((mask,), inputs)
        count = torch.arange(1, steps + 1, device=inputs.device, dtype=inputs.dtype).view(1, steps, 1, 1, 1)
        return (padded.cumsum(1) / count)[mask]


def image_head(channels: int, nc: int, factor: int) -> nn.Sequential:
    """States -> images: a 1x1 convolution and tanh (the source report's), or, when the words
    are drawn at 1/factor of the image side, log2(factor) fractionally-strided convolutions."""
    if factor == 1:
        return nn.Sequential(nn.Conv2d(channels, nc, 1), nn.Tanh())
    if factor & (factor - 1):
        raise ValueError(f"model.draw_size must be the image side divided by a power of 2, got a factor of {factor}")
    layers: list[nn.Module] = []
    for k in range(factor.bit_length() - 1):
        last = k == factor.bit_length() - 2
        layers += [nn.ConvTranspose2d(channels, nc if last else channels, 4, 2, 1),
                   nn.Tanh() if last else nn.ReLU(True)]
    return nn.Sequential(*layers)


class WordSequenceGenerator(nn.Module):
    """The source report's generator. forward(z, word_vectors, length) -> every step's output
    (B, T, nc, S, S), T = the longest caption in the batch; output `length-1` of each
    caption is its image (`final`), the ones before it are partial drawings.

    The CPU size (`draw_size` < image side): the words are drawn and the ConvLSTM runs at
    draw_size x draw_size, and `to_image` upsamples the states it is given (the losses ask
    only for the outputs they use: `draw_states`, then `to_image` on those). `sequence=mean`,
    `word_batch_norm=False` and `word_norm=True` are probes (docs/text_to_image.md)."""

    def __init__(self, nz: int, embedding_dim: int, nc: int, image_size: int, ngf: int = 32,
                 map_channels: int = 8, hidden_channels: int = 16, kernel_size: int = 3, draw_size: int | None = None,
                 sequence: str = "conv_lstm", word_batch_norm: bool = True, word_norm: bool = False,
                 forget_bias: float = 1.0):
        super().__init__()
        draw_size = image_size if draw_size is None else int(draw_size)
        if draw_size > image_size or image_size % draw_size:
            raise ValueError(f"model.draw_size must divide the image side {image_size}, got {draw_size}")
        if sequence not in ("conv_lstm", "mean"):
            raise ValueError(f"model.sequence must be conv_lstm (the source report's) or mean (a probe), "
                             f"got {sequence}")
        self.word_norm = nn.LayerNorm(embedding_dim, elementwise_affine=False) if word_norm else nn.Identity()
        self.words = WordGenerator(embedding_dim + nz, draw_size, ngf, map_channels, word_batch_norm)
        lstm = sequence == "conv_lstm"
        self.lstm = ConvLSTM(map_channels, hidden_channels, kernel_size, forget_bias) if lstm else CumulativeMean()
        state_channels = hidden_channels if lstm else map_channels
        self.to_image = image_head(state_channels, nc, image_size // draw_size)
        self.nz, self.nc, self.image_size, self.map_channels = nz, nc, image_size, map_channels

    def forward(self, z: torch.Tensor, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.draw_outputs(self.draw_words(z, word_vectors, length), length)

    def draw_words(self, z: torch.Tensor, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Every real word of the batch through the word generator in one call: (N, map, s, s),
        N = sum(length), caption by caption. Padding is not drawn (it would skew the
        batch-norm statistics); every word of a caption shares that caption's z."""
        steps = int(length.max())
        mask = word_mask(length, steps)
        words = torch.cat([self.word_norm(word_vectors[:, :steps][mask]), z[:, None, :].expand(-1, steps, -1)[mask]], 1)
        return self.words(words)

    def states(self, maps: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The word maps through the sequence model: (B, T, state, s, s), zeros after each
        caption's end (never used)."""
        return self.by_step(self.lstm(maps, length), length)

    def draw_states(self, z: torch.Tensor, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.states(self.draw_words(z, word_vectors, length), length)

    def draw_outputs(self, maps: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The word maps through the sequence model and `to_image`: (B, T, nc, S, S),
        T = the longest caption, zeros after each caption's end (never judged)."""
        return self.by_step(self.to_image(self.lstm(maps, length)), length)

    @staticmethod
    def by_step(packed: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Packed rows (caption by caption) -> (B, T, ...), zeros after each caption's end."""
        steps = int(length.max())
        out = packed.new_zeros(len(length), steps, *packed.shape[1:])
        return out.index_put((word_mask(length, steps),), packed)

    @staticmethod
    def final(outputs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Each caption's output after its last word: (B, nc, S, S)."""
        return outputs[torch.arange(len(length), device=outputs.device), length - 1]

    @staticmethod
    def partial(outputs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The outputs (or states) after words 1..n-1 of every caption, flattened: (sum(n-1), ...)."""
        steps = outputs.shape[1]
        mask = word_mask(length - 1, steps)
        return outputs[mask]
