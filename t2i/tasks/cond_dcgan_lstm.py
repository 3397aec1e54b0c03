"""The source report's design: every word drawn by a DCGAN generator, the drawings fed in order
through a convolutional LSTM; D judges the outputs after words 1..n-1, and the output after the
last word is pulled towards the caption's image (t2i/nets/conv_lstm.py, docs/text_to_image.md)."""
from __future__ import annotations

import torch

from t2i.nets.conv_lstm import WordSequenceGenerator
from t2i.nets.dcgan import Discriminator
from t2i.tasks.gan import bce
from t2i.tasks.text_to_image import TextToImageGAN


def sample_words(length: torch.Tensor, k: int, steps: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """An unbiased sample of each caption's word outputs 1..n-1: (mask (B, steps), weight
    per chosen output). Caption i has m_i = n_i - 1 of them; min(k, m_i) are drawn
    uniformly without replacement and each is weighted m_i / min(k, m_i), so the weighted
    sum has the expectation of the sum over all of them (the faithful loss), while D sees
    at most k per caption. Weights are flattened in `outputs[mask]`'s order."""
    m = (length - 1).clamp_min(0)
    position = torch.arange(steps, device=length.device)[None, :]
    valid = position < m[:, None]
    scores = torch.rand(len(length), steps, generator=generator, device=generator.device).to(length.device)
    scores = scores.masked_fill(~valid, 2.0)  # invalid positions rank last
    rank = scores.argsort(1).argsort(1)
    chosen = valid & (rank < k)
    taken = chosen.sum(1)
    weight = (m.float() / taken.clamp_min(1).float())[:, None].expand_as(chosen)[chosen]
    return chosen, weight



class CondDCGANLSTM(TextToImageGAN):
    """The source report's conditional DCGAN + LSTM (see t2i/nets/conv_lstm.py and
    docs/text_to_image.md for the diagram).

    D's loss: BCE(D(real), 1 - smoothing) + BCE(D(output_t), 0) over t = 1..n-1.
    G's loss: BCE(D(output_t), 1) over t = 1..n-1 + λ·‖output_n − image‖₂ / √(C·S·S).
    The distance is divided by √(pixel count) (an RMS distance) so one λ means the same
    at 32x32 and 64x64. D is unconditional, as in the source report: the caption reaches the
    final image only through the distance term, which is what ties it to the text.

    `d_word_samples=k` (not the source report's loss; null: every word output): D judges an
    unbiased sample of k word outputs per caption (`sample_words`), each weighted so the
    adversarial terms keep the faithful loss's expectation, at a fraction of D's cost.

    The step keeps the sequence model's states (`draw_states`) and turns into images only
    the outputs a loss uses. `adversarial_weight` scales G's adversarial term (0: the
    distance alone, a probe; D then judges only the final outputs, which G ignores).
    """

    def __init__(self, channels: int = 3, image_size: int = 64, embedding_dim: int = 400, ngf: int = 16,
                 ndf: int = 32, map_channels: int = 4, hidden_channels: int = 8, kernel_size: int = 3,
                 l2_weight: float = 100.0, label_smoothing: float = 0.0, ema_decay: float = 0.0,
                 d_word_samples: int | None = None, draw_size: int | None = None, sequence: str = "conv_lstm",
                 word_batch_norm: bool = True, word_norm: bool = False, forget_bias: float = 1.0,
                 adversarial_weight: float = 1.0, **gan_kw):
        super().__init__(**gan_kw)
        if l2_weight < 0:
            raise ValueError(f"model.l2_weight (λ) must be >= 0, got {l2_weight}")
        if d_word_samples is not None and (int(d_word_samples) != d_word_samples or d_word_samples < 1):
            raise ValueError(f"model.d_word_samples must be null (every word output, the source report's loss) "
                             f"or an integer >= 1, got {d_word_samples}")
        if adversarial_weight < 0:
            raise ValueError(f"model.adversarial_weight must be >= 0 (0: the distance alone), got {adversarial_weight}")
        self.d_word_samples = None if d_word_samples is None else int(d_word_samples)
        self.adversarial_weight = float(adversarial_weight)
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        self.generator = WordSequenceGenerator(self.nz, embedding_dim, channels, image_size, ngf, map_channels,
                                               hidden_channels, kernel_size, draw_size, sequence, word_batch_norm,
                                               word_norm, forget_bias)
        self.discriminator = Discriminator(channels, ndf, image_size)
        self.l2_weight, self.real_label = l2_weight, 1.0 - label_smoothing
        self.init_ema(ema_decay)

    def generate_for_step(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.generator.draw_states(z, batch["word_vectors"], batch["length"])  # (B, T, state, s, s)

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        generator = self.drawing_generator()
        return self.final_images(batch, generator.draw_states(z, batch["word_vectors"], batch["length"]), generator)

    def final_images(self, batch: dict, states: torch.Tensor, generator=None) -> torch.Tensor:
        """Each caption's image (its output after the last word) from the step's states."""
        generator = self.generator if generator is None else generator
        return generator.to_image(WordSequenceGenerator.final(states, batch["length"]))

    def judged_outputs(self, batch: dict, states: torch.Tensor, stream: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output images D sees, with their loss weights (None: equal): after words 1..n-1,
        or an unbiased sample of them (`d_word_samples`); when no caption has more than one
        word, the only outputs stand in, so D always has fakes to judge."""
        length = batch["length"]
        if self.d_word_samples is None:
            partial, weight = WordSequenceGenerator.partial(states, length), None
        else:
            mask, weight = sample_words(length, self.d_word_samples, states.shape[1],
                                        self.rng(stream=30_000 + stream, step=self.d_calls))
            partial = states[mask]
        if not len(partial):
            return self.final_images(batch, states), None
        return self.generator.to_image(partial), weight

    def discriminator_loss(self, batch, states):
        real_logits = self.discriminator(batch["image"])
        if self.adversarial_weight == 0:  # the probe: G ignores D, so D need not judge every word
            judged, weight = self.final_images(batch, states), None
        else:
            judged, weight = self.judged_outputs(batch, states, stream=1)
        fake_logits = self.discriminator(judged)
        loss = bce(real_logits, self.real_label) + bce(fake_logits, 0.0, weight)
        return loss, {"train/d_real": torch.sigmoid(real_logits).mean(),
                      "train/d_fake": torch.sigmoid(fake_logits).mean()}

    def distance(self, batch, states) -> torch.Tensor:
        """The report's distance on the last output: ‖output_n − image‖₂ per caption, RMS-scaled
        (divided by √pixels), averaged over the batch."""
        diff = (self.final_images(batch, states) - batch["image"]).flatten(1)
        return diff.norm(dim=1).mean() / diff.shape[1] ** 0.5

    def generator_loss(self, batch, states):
        distance = self.distance(batch, states)
        if self.adversarial_weight == 0:
            return self.l2_weight * distance, {"train/g_distance": distance}
        judged, weight = self.judged_outputs(batch, states, stream=2)
        logits = self.discriminator(judged)
        adversarial = bce(logits, 1.0, weight)
        return self.adversarial_weight * adversarial + self.l2_weight * distance, {
            "train/g_adversarial": adversarial, "train/g_distance": distance,
            "train/d_fake_g": torch.sigmoid(logits).mean()}
