"""GAN-CLS (Reed et al. 2016): sentence embedding -> 128-d -> joined with z; a matching-aware
discriminator trained on (real, right text), (real, wrong text) and (fake, right text);
one-sided label smoothing; optional GAN-INT."""
from __future__ import annotations

import torch

from t2i.nets.text_encoders import MatchingDiscriminator, TextConditionedGenerator
from t2i.tasks.gan import bce, r1_penalty
from t2i.tasks.text_to_image import SentenceConditioned, TextToImageGAN, wrong_text_pairs


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
