"""Text-to-image GANs on caption batches (`word_vectors` (B, L, D), `length` (B,)):

- `GANCLS`: Reed et al. 2016. Sentence embedding -> 128-d -> joined with z; a
  matching-aware discriminator trained on (real, right text), (real, wrong text) and
  (fake, right text); one-sided label smoothing; optional GAN-INT.
- `CondDCGANLSTM`: the source report's design. Every word drawn by a DCGAN generator, the
  drawings fed in order through a convolutional LSTM; D judges the outputs after words
  1..n-1, and the output after the last word is pulled towards the caption's image.

Both go through `GANTask`'s shared step (k D steps, then a G step, non-finite guard).
"""
from __future__ import annotations

import logging

import torch

from t2i.evaluation.generators import evaluate_generator
from t2i.generator import ImageGenerator
from t2i.nets.conv_lstm import WordSequenceGenerator
from t2i.nets.dcgan import Discriminator
from t2i.nets.text_encoders import MatchingDiscriminator, TextConditionedGenerator
from t2i.tasks.cpu_threads import CPUThreads
from t2i.tasks.ema import GeneratorEMA
from t2i.tasks.gan import GANTask, bce, r1_penalty
from t2i.tensors import evaluating

log = logging.getLogger("t2i")


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


def same_caption(batch: dict) -> torch.Tensor:
    """(B, B) bool: True where items i and j carry the same caption text."""
    if "token_ids" in batch:
        ids = batch["token_ids"]
        return (ids[:, None, :] == ids[None, :, :]).all(-1)
    device = batch["image"].device
    if "caption" in batch:
        index: dict[str, int] = {}
        codes = torch.tensor([index.setdefault(c, len(index)) for c in batch["caption"]], device=device)
        return codes[:, None] == codes[None, :]
    return torch.eye(batch["image"].shape[0], dtype=torch.bool, device=device)


def hardest_wrong(sentence: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """For every item, the index of the nearest *different* caption in the batch
    (nearest in `sentence`, D's projected text space); items whose batch holds no
    different caption get themselves (and are masked out by the caller)."""
    with torch.no_grad():
        dist = torch.cdist(sentence.float(), sentence.float())
        dist = dist.masked_fill(same, float("inf"))
        nearest = dist.argmin(1)
        has_other = torch.isfinite(dist.gather(1, nearest[:, None])).squeeze(1)
    return torch.where(has_other, nearest, torch.arange(len(nearest), device=nearest.device))


def differs_from_rolled(batch: dict, same: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) True where item i's caption differs from item i-1's, the one it is paired
    with as "wrong text". Templated captions repeat (1 in 32 for shapes): a real image
    with an identical caption is no mismatch, and must not be called one. `same`: the
    batch's `same_caption` matrix, when the caller has it already."""
    same = same_caption(batch) if same is None else same
    i = torch.arange(len(same), device=same.device)
    return ~same[i, i - 1]  # i - 1 = -1 for item 0: the last item, as roll(1, 0) pairs them


def wrong_text_pairs(batch: dict, hard_space: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The mismatched (image, caption) pairs a matching-aware D learns to reject, as
    (caption index per item, valid per item): each image with its neighbour's caption (the
    paper's random wrong text) and, given `hard_space` (hard negatives: the sentence
    vectors to measure nearness in), with the nearest *different* caption too. Pairs
    whose "wrong" caption is the same text are not valid."""
    same = same_caption(batch)
    i = torch.arange(len(same), device=same.device)
    pairs = [(i - 1, differs_from_rolled(batch, same))]
    if hard_space is not None:
        nearest = hardest_wrong(hard_space, same)
        pairs.append((nearest, ~same[i, nearest]))
    return pairs


class TextToImageGAN(ImageGenerator, CPUThreads, GeneratorEMA, GANTask):
    """What every caption-conditioned GAN shares: evaluation (FID/KID, alignment,
    captions.png), generation from typed captions, and an optional exponential moving
    average (EMA) of the generator's weights (`t2i.tasks.ema`): training always uses the
    live generator; sampling (eval mode: evaluate.py, generate.py, sample grids) uses
    the average."""

    uses_text = True

    def __init__(self, cpu_threads: int | str | None = "auto", **gan_kw):
        super().__init__(**gan_kw)
        self.init_cpu_threads(cpu_threads)

    def evaluate(self, datamodule, eval_cfg, out_dir) -> dict:
        with self.cpu_threads_applied():
            return evaluate_generator(self, datamodule, eval_cfg, out_dir)

    def images_for_text(self, encoded: dict, n: int, seed: int = 0) -> torch.Tensor:
        """`n` images per encoded caption (datamodule.encode's dict), in eval mode:
        (captions, n, C, S, S) in [-1, 1] on CPU."""
        count = encoded["length"].shape[0]
        batch = {"word_vectors": encoded["word_vectors"].float().repeat_interleave(n, 0).to(self.device),
                 "length": encoded["length"].long().repeat_interleave(n, 0).to(self.device)}
        with evaluating(self):
            images = self.generate(batch, self.draw_noise(count * n, seed)).float().cpu()
        return images.view(count, n, *images.shape[1:])


class SentenceConditioned:
    """Drawing for generators with a sentence encoder (`generator.text.embed`) and a
    `sentence=` input: GAN-CLS and DF-GAN. `embed_text` / `generate_from_embedding` are
    what text_interpolation.png walks between."""

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.drawing_generator()(z, batch["word_vectors"], batch["length"])

    def embed_text(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The drawing generator's sentence embedding (B, E), before its projection."""
        return self.drawing_generator().text.embed(word_vectors, length)

    def generate_from_embedding(self, z: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """Images from `embed_text`'s vectors (or mixtures of them: text interpolation)."""
        return self.drawing_generator()(z, sentence=sentence)


class GANCLS(SentenceConditioned, TextToImageGAN):
    """GAN-CLS (Reed et al. 2016), optionally with GAN-INT.

    D's loss: BCE(D(real, right), 1 - smoothing) + w·BCE(D(real, wrong), 0)
              + (1 - w)·BCE(D(fake, right), 0), with w = `wrong_weight` (0.5 in the paper).
    G's loss: BCE(D(fake, right), 1) [+ λ_int·BCE(D(G(z, t_int), t_int), 1), with
              t_int = β·t_i + (1 - β)·t_j, an interpolation of two captions' embeddings].

    Wrong text is another item's caption, as in the paper. With `hard_negatives`, the
    wrong-text term averages two such pairs: that random one and the *nearest different*
    caption in D's own text space. Why: with random pairs, a wrong caption almost always
    differs in something easy to see (on shapes only 1 pair in 32 differs in shape
    alone), so D is barely pushed to read the subtle attributes, and G never learns
    them; the nearest different caption is, by construction, the one D currently
    confuses, so D's mismatch training moves on to whatever it cannot yet tell apart.
    """

    def __init__(self, channels: int = 3, image_size: int = 64, embedding_dim: int = 400,
                 text_encoder: str = "mean", text_dim: int = 128, text_hidden: int = 256,
                 text_batch_norm: bool = True, ngf: int = 32, ndf: int = 32, label_smoothing: float = 0.1,
                 wrong_weight: float = 0.5,
                 interpolation_weight: float = 0.0, interpolation_beta: float = 0.5,
                 hard_negatives: bool = True, ema_decay: float = 0.0, upsample: str = "deconv",
                 r1_gamma: float = 0.0, r1_every: int = 1, **gan_kw):
        super().__init__(**gan_kw)
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"model.label_smoothing must be in [0, 0.5), got {label_smoothing}")
        if not 0.0 <= wrong_weight <= 1.0:
            raise ValueError(f"model.wrong_weight must be in [0, 1], got {wrong_weight}")
        if interpolation_weight < 0:
            raise ValueError(f"model.interpolation_weight must be >= 0 (0 turns GAN-INT off), got "
                             f"{interpolation_weight}")
        if r1_gamma < 0 or r1_every < 1:
            raise ValueError(f"model.r1_gamma must be >= 0 and model.r1_every >= 1, got {r1_gamma}, {r1_every}")
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        text = dict(text_encoder=text_encoder, text_dim=text_dim, text_hidden=text_hidden,
                    text_batch_norm=text_batch_norm)
        self.generator = TextConditionedGenerator(self.nz, embedding_dim, channels, image_size, ngf, **text,
                                                  upsample=upsample)
        self.discriminator = MatchingDiscriminator(channels, embedding_dim, image_size, ndf, **text)
        self.real_label = 1.0 - label_smoothing  # one-sided: fakes keep target 0
        self.wrong_weight = wrong_weight
        self.interpolation_weight, self.interpolation_beta = interpolation_weight, interpolation_beta
        self.hard_negatives = hard_negatives
        self.init_ema(ema_decay)

    def discriminator_loss(self, batch, fake):
        d = self.discriminator
        sentence = d.text.embed(batch["word_vectors"], batch["length"])
        penalise = self.lazy_due(self.r1_every, self.r1_gamma)
        real = batch["image"].detach().requires_grad_(penalise)
        real_features = d.features(real)  # once, scored against two captions
        right = d.score(real_features, sentence)
        pairs = wrong_text_pairs(batch, d.text.project(sentence) if self.hard_negatives else None)
        wrong = [d.score(real_features, sentence[index]) for index, _ in pairs]
        wrong_loss = sum(bce(w, 0.0, valid) for w, (_, valid) in zip(wrong, pairs)) / len(pairs)
        logs = {"train/d_real_right": torch.sigmoid(right).mean(), "train/d_real_wrong": torch.sigmoid(wrong[0]).mean()}
        if self.hard_negatives:
            logs["train/d_real_hard_wrong"] = torch.sigmoid(wrong[1]).mean()
        fake_logits = d(fake, sentence=sentence)
        loss = (bce(right, self.real_label) + self.wrong_weight * wrong_loss
                + (1 - self.wrong_weight) * bce(fake_logits, 0.0))
        logs["train/d_fake"] = torch.sigmoid(fake_logits).mean()
        if penalise:  # R1 at (real image, right caption)
            penalty = r1_penalty(right, real)
            loss = loss + 0.5 * self.r1_gamma * self.r1_every * penalty
            logs["train/r1"] = penalty.detach()
        return loss, logs

    def generator_loss(self, batch, fake):
        logits = self.discriminator(fake, batch["word_vectors"], batch["length"])
        loss = bce(logits, 1.0)
        logs = {"train/d_fake_g": torch.sigmoid(logits).mean()}
        if self.interpolation_weight > 0:
            loss_int = self.interpolation_loss(batch)
            loss = loss + self.interpolation_weight * loss_int
            logs["train/g_loss_int"] = loss_int
        return loss, logs

    def interpolation_loss(self, batch: dict) -> torch.Tensor:
        """GAN-INT: captions between two training captions have no image, but their
        fakes must still fool D, which fills the gaps of the text manifold. Each net
        interpolates in its own embedding space (their encoders are separate)."""
        wv, length, beta = batch["word_vectors"], batch["length"], self.interpolation_beta
        g_text = self.generator.text.embed(wv, length)
        d_text = self.discriminator.text.embed(wv, length)
        g_mix = beta * g_text + (1 - beta) * g_text.roll(1, 0)
        d_mix = beta * d_text + (1 - beta) * d_text.roll(1, 0)
        z = self.noise(wv.shape[0], stream=5_000)
        return bce(self.discriminator(self.generator(z, sentence=g_mix), sentence=d_mix), 1.0)


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
    """

    def __init__(self, channels: int = 3, image_size: int = 64, embedding_dim: int = 400, ngf: int = 16,
                 ndf: int = 32, map_channels: int = 4, hidden_channels: int = 8, kernel_size: int = 3,
                 l2_weight: float = 100.0, label_smoothing: float = 0.0, ema_decay: float = 0.0,
                 d_word_samples: int | None = None, **gan_kw):
        super().__init__(**gan_kw)
        if l2_weight < 0:
            raise ValueError(f"model.l2_weight (λ) must be >= 0, got {l2_weight}")
        if d_word_samples is not None and (int(d_word_samples) != d_word_samples or d_word_samples < 1):
            raise ValueError(f"model.d_word_samples must be null (every word output, the source report's loss) "
                             f"or an integer >= 1, got {d_word_samples}")
        self.d_word_samples = None if d_word_samples is None else int(d_word_samples)
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        self.generator = WordSequenceGenerator(self.nz, embedding_dim, channels, image_size, ngf, map_channels,
                                               hidden_channels, kernel_size)
        self.discriminator = Discriminator(channels, ndf, image_size)
        self.l2_weight, self.real_label = l2_weight, 1.0 - label_smoothing
        self.init_ema(ema_decay)

    def generate_for_step(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z, batch["word_vectors"], batch["length"])  # (B, T, C, S, S)

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        outputs = self.drawing_generator()(z, batch["word_vectors"], batch["length"])
        return WordSequenceGenerator.final(outputs, batch["length"])

    def judged_outputs(self, batch: dict, outputs: torch.Tensor, stream: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The outputs D sees, with their loss weights (None: equal): after words 1..n-1,
        or an unbiased sample of them (`d_word_samples`); when no caption has more than one
        word, the only outputs stand in, so D always has fakes to judge."""
        length = batch["length"]
        if self.d_word_samples is None:
            partial, weight = WordSequenceGenerator.partial(outputs, length), None
        else:
            mask, weight = sample_words(length, self.d_word_samples, outputs.shape[1],
                                        self.rng(stream=30_000 + stream, step=self.d_calls))
            partial = outputs[mask]
        if not len(partial):
            return WordSequenceGenerator.final(outputs, length), None
        return partial, weight

    def discriminator_loss(self, batch, outputs):
        real_logits = self.discriminator(batch["image"])
        judged, weight = self.judged_outputs(batch, outputs, stream=1)
        fake_logits = self.discriminator(judged)
        loss = bce(real_logits, self.real_label) + bce(fake_logits, 0.0, weight)
        return loss, {"train/d_real": torch.sigmoid(real_logits).mean(),
                      "train/d_fake": torch.sigmoid(fake_logits).mean()}

    def generator_loss(self, batch, outputs):
        judged, weight = self.judged_outputs(batch, outputs, stream=2)
        logits = self.discriminator(judged)
        adversarial = bce(logits, 1.0, weight)
        final = WordSequenceGenerator.final(outputs, batch["length"])
        diff = (final - batch["image"]).flatten(1)
        distance = diff.norm(dim=1).mean() / diff.shape[1] ** 0.5
        return adversarial + self.l2_weight * distance, {
            "train/g_adversarial": adversarial, "train/g_distance": distance,
            "train/d_fake_g": torch.sigmoid(logits).mean()}
