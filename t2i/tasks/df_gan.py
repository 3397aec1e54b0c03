"""DF-GAN (Tao et al. 2022) on the shared GAN step: hinge loss, the matching-aware
zero-centred gradient penalty (MA-GP), mismatched captions as negatives.

D's loss:  mean relu(1 − D(x, s)) + ½·[mean relu(1 + D(G(z, s), s)) + mean relu(1 + D(x, s'))]
           + k · mean_i ‖(∂D(x_i, s_i)/∂x_i, ∂D(x_i, s_i)/∂s_i)‖^p,   k = 2, p = 6
G's loss:  −mean D(G(z, s), s)

x a real image, s its caption's sentence vector in D (after D's projection), s' another
item's caption (pairs whose "other" caption is the same text are left out). No label
smoothing, no feature matching, no L1 term.

Options that are NOT the paper (all off by default; shapes_dfgan turns some on, see its
config and docs/text_to_image.md for the runs): `hard_negatives` (GAN-CLS's nearest
different caption as a second wrong pair), `gp_sentence=false` (the penalty on the image
gradient only), `gp_every=N` (lazy penalty: every N-th D step, N times the weight) and
`d_gamma_init` (D's residual gains start there instead of 0).

Mixed precision. The penalty needs ∂D/∂(x, s) inside D's loss (create_graph=True, so
its own gradient reaches D's weights through `manual_backward`). Under 16-mixed,
Lightning's GradScaler scales only the final loss given to `manual_backward`; the inner
gradient is taken by us, through the same fp16 autocast ops, and small input gradients
(~1e-6 per pixel) would underflow to 0 in fp16 and hide the penalty. So the inner
gradient is taken of `scale · scores` with the run's current scale (PyTorch's AMP
recipe for gradient penalties, and the authors' `MA_GP_MP`), then divided by it in
fp32 and reduced to the norm in fp32. If the scaled inner gradient overflows (inf), the
scaler is about to lower its scale anyway; that step's penalty is retaken unscaled
instead of handing an inf loss to the non-finite guard. bf16-mixed and 32 have no scaler
(scale 1): bf16 has fp32's range, so nothing underflows.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from t2i.nets.df_gan import DFDiscriminator, DFGenerator
from t2i.tasks.gan import weighted_mean
from t2i.tasks.text_to_image import (
    SentenceConditioned,
    TextToImageGAN,
    wrong_text_pairs,
)


def matching_aware_gradient_penalty(scores: torch.Tensor, images: torch.Tensor, sentence: torch.Tensor | None,
                                    weight: float = 2.0, exponent: float = 6.0,
                                    loss_scale: float = 1.0) -> torch.Tensor:
    """MA-GP: weight · mean_i ‖(∂score_i/∂image_i, ∂score_i/∂sentence_i)‖^exponent.

    Zero-centred: it pulls the gradient norm at (real image, matching text) towards 0
    (a flat D around the real, matching data), unlike WGAN-GP's norm-1 target.
    Differentiable: the inner gradient keeps its graph, so the penalty trains D.
    Per-item gradients come from one `grad` of the summed scores, which is exact because
    no item's score depends on another item's image or sentence (D has no batch norm).
    `loss_scale`: multiply the scores before differentiating and divide after (16-mixed).
    The norm is raised as (‖g‖²)^(p/2): no square root, whose gradient is infinite at 0.
    `sentence=None`: the image gradient only (not the paper; see DFGAN's `gp_sentence`)."""
    inputs = (images,) if sentence is None else (images, sentence)
    grads = torch.autograd.grad(scores.sum() * loss_scale, inputs, create_graph=True)
    # fp16/bf16 inner gradients are reduced in fp32 (float64 stays float64)
    squared = sum((g.to(torch.promote_types(g.dtype, torch.float32)) / loss_scale).flatten(1).pow(2).sum(1)
                  for g in grads)
    return weight * squared.pow(exponent / 2).mean()


class DFGAN(SentenceConditioned, TextToImageGAN):
    """DF-GAN: deep-fusion generator, one-way matching discriminator with MA-GP.

    `hard_negatives` (off by default: not in the paper) adds GAN-CLS's second wrong
    pair, the nearest different caption in D's sentence space (see `GANCLS`)."""

    def __init__(self, channels: int = 3, image_size: int = 64, embedding_dim: int = 400,
                 text_encoder: str = "mean", text_dim: int = 256, text_hidden: int = 256,
                 text_batch_norm: bool = True, ngf: int = 32, ndf: int = 32,
                 d_gamma_init: float = 0.0, gp_weight: float = 2.0, gp_exponent: float = 6.0, gp_every: int = 1,
                 gp_sentence: bool = True, d_projection: bool = False,
                 hard_negatives: bool = False, ema_decay: float = 0.0, noise: str = "normal", **gan_kw):
        super().__init__(noise=noise, **gan_kw)
        if gp_weight < 0:
            raise ValueError(f"model.gp_weight must be >= 0 (0 turns MA-GP off; the paper: 2), got {gp_weight}")
        if gp_exponent <= 0:
            raise ValueError(f"model.gp_exponent must be > 0 (the paper: 6), got {gp_exponent}")
        if int(gp_every) != gp_every or gp_every < 1:
            raise ValueError(f"model.gp_every must be an integer >= 1 (1: every D step, the paper), got {gp_every}")
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        text = dict(text_encoder=text_encoder, text_dim=text_dim, text_hidden=text_hidden,
                    text_batch_norm=text_batch_norm)
        self.generator = DFGenerator(self.nz, embedding_dim, channels, image_size, ngf, **text)
        self.discriminator = DFDiscriminator(channels, embedding_dim, image_size, ndf, gamma_init=d_gamma_init,
                                            projection=d_projection, **text)
        self.gp_weight, self.gp_exponent, self.hard_negatives = gp_weight, gp_exponent, hard_negatives
        self.gp_every, self.gp_sentence = int(gp_every), gp_sentence
        self.init_ema(ema_decay)

    # ------------------------------------------------------------- losses
    def loss_scale(self) -> float:
        """The GradScaler's current scale under 16-mixed, else 1."""
        plugin = self._trainer.precision_plugin if self._trainer is not None else None
        scaler = getattr(plugin, "scaler", None)
        return float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0

    def gradient_penalty(self, scores: torch.Tensor, images: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        kw = dict(weight=self.gp_weight * self.gp_every, exponent=self.gp_exponent)
        sentence = sentence if self.gp_sentence else None
        scale = self.loss_scale()
        penalty = matching_aware_gradient_penalty(scores, images, sentence, loss_scale=scale, **kw)
        if scale != 1.0 and not torch.isfinite(penalty):  # the scaled inner gradient overflowed: see the module doc
            penalty = matching_aware_gradient_penalty(scores, images, sentence, **kw)
        return penalty

    def discriminator_loss(self, batch, fake):
        d = self.discriminator
        with_penalty = self.lazy_due(self.gp_every, self.gp_weight)
        images = batch["image"].detach().requires_grad_(with_penalty)  # MA-GP differentiates by the real images
        sentence = d.sentence(batch["word_vectors"], batch["length"])
        # D's text weights frozen (e.g. a test): the sentence is still a leaf to differentiate by
        if with_penalty and self.gp_sentence and not sentence.requires_grad:
            sentence.requires_grad_(True)
        real_features = d.features(images)  # once, judged against two captions
        right = d.score(real_features, sentence)
        pairs = wrong_text_pairs(batch, sentence if self.hard_negatives else None)
        wrong = [d.score(real_features, sentence[index]) for index, _ in pairs]
        mismatch = sum(weighted_mean(F.relu(1 + w), valid) for w, (_, valid) in zip(wrong, pairs)) / len(pairs)
        logs = {"train/d_real_right": right.mean(), "train/d_real_wrong": wrong[0].mean()}
        if self.hard_negatives:
            logs["train/d_real_hard_wrong"] = wrong[1].mean()
        fake_scores = d.score(d.features(fake), sentence)
        penalty = self.gradient_penalty(right, images, sentence) if with_penalty else right.new_zeros(())
        loss = F.relu(1 - right).mean() + 0.5 * (F.relu(1 + fake_scores).mean() + mismatch) + penalty
        logs.update({"train/d_fake": fake_scores.mean(), "train/ma_gp": penalty})
        return loss, logs

    def generator_loss(self, batch, fake):
        scores = self.discriminator(fake, batch["word_vectors"], batch["length"])
        return -scores.mean(), {"train/d_fake_g": scores.mean()}
