"""Text-image alignment: does the picture say what the caption says?

An attribute classifier trained on real images (the cached domain classifier of
t2i.evaluation.domain: shape, size, fill and position for captioned shapes) reads the
attributes off images generated from held-out captions, and we count how often they
are the caption's. Two references make the number readable:

- `alignment_accuracy_real`: the classifier on the real held-out images (the ceiling:
  a perfect generator cannot score above the classifier's own accuracy);
- `alignment_accuracy_shuffled`: the same generated images scored against the captions
  of other images (the floor: what an image that ignores its caption scores, i.e. the
  chance that two random captions share an attribute).
"""
from __future__ import annotations

import torch

from t2i.evaluation.domain import DomainClassifier, accuracy, train_domain_classifier


def derangement(n: int, seed: int = 0) -> torch.Tensor:
    """A permutation with no fixed point (each item paired with another one), from a seed."""
    if n < 2:
        raise ValueError(f"shuffled alignment needs at least 2 captions, got {n}")
    g = torch.Generator().manual_seed(seed)
    shift = int(torch.randint(1, n, (1,), generator=g))
    order = torch.randperm(n, generator=g)
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(shift)  # a cyclic shift over a random order: never i -> i
    return perm


def alignment_metrics(classifier: DomainClassifier, generated: torch.Tensor, real: torch.Tensor,
                      targets: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """`generated[i]` was drawn from the caption of `real[i]`, whose attributes are
    `targets[i]` (columns in the classifier's head order). Returns the contract keys:
    alignment_accuracy, alignment_accuracy/<attribute>, alignment_accuracy_real,
    alignment_accuracy_shuffled (plus per-attribute real and shuffled values)."""
    if not (len(generated) == len(real) == len(targets)):
        raise ValueError(f"need one generated and one real image per caption, got {len(generated)} generated, "
                         f"{len(real)} real, {len(targets)} targets")
    targets = targets.long().cpu()
    on_caption = accuracy(classifier, generated, targets)
    on_real = accuracy(classifier, real, targets)
    on_shuffled = accuracy(classifier, generated, targets[derangement(len(targets), seed)])
    mean = lambda scores: sum(scores.values()) / len(scores)  # noqa: E731
    metrics = {"alignment_accuracy": mean(on_caption), "alignment_accuracy_real": mean(on_real),
               "alignment_accuracy_shuffled": mean(on_shuffled)}
    for name in on_caption:
        metrics[f"alignment_accuracy/{name}"] = on_caption[name]
        metrics[f"alignment_accuracy_real/{name}"] = on_real[name]
        metrics[f"alignment_accuracy_shuffled/{name}"] = on_shuffled[name]
    return metrics


def alignment_classifier(datamodule, cache_dir) -> DomainClassifier:
    """The attribute classifier for `datamodule` (trained on its real training images
    once, then loaded from cache_dir; the same one the domain FID uses)."""
    if not getattr(datamodule, "target_names", None):
        raise ValueError(f"{type(datamodule).__name__} has no attribute targets: alignment cannot be measured")
    classifier, _ = train_domain_classifier(datamodule, cache_dir)
    names = list(classifier.heads_spec)
    if names != list(datamodule.target_names):
        raise ValueError(f"classifier heads {names} differ from the data's targets {list(datamodule.target_names)}")
    return classifier
