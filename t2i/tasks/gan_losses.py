"""The loss pieces the adversarial models share: (weighted) BCE on logits, the R1
penalty, and the mode-seeking ratio. t2i.tasks.gan's step uses them; so do the models."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of per-item `values` weighted by `weight` (a bool mask or float weights >= 1
    where nonzero); 0 when every weight is 0."""
    weight = weight.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def bce(logits: torch.Tensor, target: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """BCE-with-logits against a constant target: the plain mean, or with `weight` (one per
    item: a mask or sampling weights) the weighted mean of the items' losses."""
    if weight is None:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
    losses = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")
    return weighted_mean(losses.reshape(len(weight), -1).mean(1), weight)


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean squared norm of D's gradient at the real images,
    pushed to 0; it keeps D from racing ahead of G. Differentiable (trains D)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def mode_seeking_ratio(fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor
                       ) -> torch.Tensor:
    """MSGAN's ratio (Mao et al. 2019, eq. 3): mean |G(c, z_a) - G(c, z_b)| over
    mean |z_a - z_b|, for pairs with the same condition c. G maximises it, so two noises
    cannot give one picture: the cure the paper proposes for conditional GANs that
    ignore z (mode collapse per condition)."""
    return (fake_a - fake_b).abs().float().mean() / (z_a - z_b).abs().float().mean()
