"""Closed outlines: is an outline shape drawn whole, or broken into arcs and stubs?

An attribute classifier can call a broken ring an outline circle, so alignment does not
see gaps. This counts them directly: an image is thresholded a quarter of the way from
black to white (ink where the pixel is brighter: a line a viewer sees), and its outline
is *closed* when some dark pixel cannot be reached from the image's border by dark pixels
(a hole: the inside of the ring). Dark pixels connect through their 4 neighbours and ink
through 8, the usual pairing of digital topology, so a ring whose pixels touch only at
corners still counts as closed and a gap of one pixel lets the outside in.

`outline_closed` is the share of images drawn from "outline" captions with a hole, and
`outline_closed_real` the same on the real images of those captions: the ceiling, 1.000
on the shapes (their anti-aliased 1-pixel rings are grey, so a threshold at three
quarters would open nearly all of them: 0.04).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from t2i.data.synthetic.shapes import FILLS

CROSS = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])


def has_hole(images: torch.Tensor, threshold: float = -0.5) -> torch.Tensor:
    """(N,) bool for images (N, C, H, W) in [-1, 1] (channels averaged): True where a dark
    pixel (<= threshold) is not 4-connected to the border through dark pixels."""
    dark = (images.float().mean(1, keepdim=True) <= threshold).float()
    outside = torch.zeros_like(dark)
    outside[..., 0, :] = outside[..., -1, :] = outside[..., :, 0] = outside[..., :, -1] = 1.0
    outside = outside * dark
    cross = CROSS.to(dark.device)[None, None]
    while True:  # grow the outside through dark pixels until it stops
        grown = (F.conv2d(outside, cross, padding=1) > 0).float() * dark
        if torch.equal(grown, outside):
            break
        outside = grown
    return ((dark - outside) > 0).flatten(1).any(1)


def outline_metrics(fake: torch.Tensor, real: torch.Tensor, targets: torch.Tensor,
                    target_names) -> dict[str, float]:
    """`fake[i]` was drawn from the caption of `real[i]`, whose attribute targets are
    `targets[i]` (columns named by `target_names`). Data without a `fill` attribute (not
    the shapes) has no outlines: {}. Else outline_closed, outline_closed_real and their count,
    over the captions that ask for an outline."""
    names = list(target_names)
    if "fill" not in names:
        return {}
    is_outline = targets[:, names.index("fill")].cpu() == FILLS.index("outline")
    count = int(is_outline.sum())
    if count == 0:
        return {}
    return {"outline_closed": has_hole(fake[is_outline]).float().mean().item(),
            "outline_closed_real": has_hole(real[is_outline]).float().mean().item(),
            "outline_closed_count": count}
