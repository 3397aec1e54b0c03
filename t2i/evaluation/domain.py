"""A small classifier trained on a dataset's real images to predict its discrete
targets (digit, shape/size/fill/position, ...). Its penultimate layer is the feature
space of the *domain* FID/KID used where Inception weights are unavailable, and its
heads score text-image alignment. Trained once, cached on disk."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from t2i.atomic_files import atomic_save, load_cache
from t2i.safe_load import load_torch
from t2i.tensors import evaluating, seeded_rng

log = logging.getLogger("t2i")


class DomainClassifier(nn.Module):
    def __init__(self, channels: int, heads: dict[str, int], width: int = 32):
        super().__init__()
        self.heads_spec = dict(heads)
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 2, 1), nn.ReLU(True),
            nn.Conv2d(width, width * 2, 3, 2, 1), nn.BatchNorm2d(width * 2), nn.ReLU(True),
            nn.Conv2d(width * 2, width * 4, 3, 2, 1), nn.BatchNorm2d(width * 4), nn.ReLU(True),
            nn.Conv2d(width * 4, width * 4, 3, 1, 1), nn.BatchNorm2d(width * 4), nn.ReLU(True),
        )
        self.num_features = width * 4 * 4
        self.pool = nn.AdaptiveAvgPool2d(2)  # keeps coarse position: needed for "top left"
        self.heads = nn.ModuleDict({k: nn.Linear(self.num_features, n) for k, n in heads.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {k: head(h) for k, head in self.heads.items()}


def _targets(dataset, indices) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in indices]
    return torch.stack([it["image"] for it in items]), torch.stack([torch.as_tensor(it["targets"]) for it in items])


def accuracy(classifier: DomainClassifier, images: torch.Tensor, targets: torch.Tensor,
             batch_size: int = 256) -> dict[str, float]:
    """Per-head accuracy of `classifier` on images (in [-1, 1]) against targets (N, heads)."""
    correct = torch.zeros(len(classifier.heads_spec))
    device = next(classifier.parameters()).device
    with evaluating(classifier):
        for s in range(0, len(images), batch_size):
            out = classifier(images[s:s + batch_size].to(device).float())
            for j, name in enumerate(classifier.heads_spec):
                correct[j] += (out[name].argmax(1).cpu() == targets[s:s + batch_size, j]).sum()
    return {name: float(correct[j] / max(1, len(images))) for j, name in enumerate(classifier.heads_spec)}


def cache_key(datamodule) -> str:
    """What the classifier (and reference features) depend on: the data module's class and
    the settings that change its images (the run's seed only where it generates them)."""
    ignore = {"batch_size", "num_workers", "pin_memory", "root", "prepare_data_per_node",
              "allow_zero_length_dataloader_with_multiple_devices"}
    if not getattr(datamodule, "seed_changes_data", True):
        ignore.add("seed")
    settings = {k: v for k, v in vars(datamodule).items()
                if isinstance(v, (int, float, str, bool, tuple, list, dict)) and not k.startswith("_")
                and k not in ignore}
    blob = json.dumps([type(datamodule).__name__, settings], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


@torch.enable_grad()  # callers may be under no_grad (the in-training monitor, evaluation)
def train_domain_classifier(datamodule, cache_dir: str | Path, epochs: int = 4, max_train: int = 20000,
                            batch_size: int = 128, seed: int = 0) -> tuple[DomainClassifier, dict]:
    """Train (or load from `cache_dir`) the classifier for `datamodule`'s `targets`.
    Returns it with its held-out accuracy per head, which evaluation reports."""
    if getattr(datamodule, "domain_name", None) is None:
        raise ValueError(f"{type(datamodule).__name__} has no discrete targets for a domain classifier")
    heads = dict(datamodule.target_classes)
    path = Path(cache_dir) / "domain" / f"{datamodule.domain_name}-{cache_key(datamodule)}.pt"
    classifier = DomainClassifier(datamodule.channels, heads)
    state = load_cache(path, load_torch)  # no code runs: a cache with anything else is rebuilt
    if state is not None:
        classifier.load_state_dict(state["state_dict"])
        return classifier.eval(), state["accuracy"]

    datamodule.setup("fit")
    g = torch.Generator().manual_seed(seed)
    train_idx = torch.randperm(len(datamodule.train_set), generator=g)[:max_train].tolist()
    images, targets = _targets(datamodule.train_set, train_idx)
    held = datamodule.val_set if datamodule.val_set is not None and len(datamodule.val_set) else datamodule.train_set
    val_images, val_targets = _targets(held, range(min(2000, len(held))))

    # seeded inside, the caller's random state untouched (cached or trained, a run goes on alike)
    with seeded_rng(seed):
        opt = torch.optim.Adam(classifier.parameters(), lr=2e-3)
        steps = epochs * max(1, len(images) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        classifier.train()
        step = 0
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=g)
            for s in range(0, len(images) - batch_size + 1, batch_size):
                idx = order[s:s + batch_size]
                out = classifier(images[idx])
                loss = sum(F.cross_entropy(out[k], targets[idx, j]) for j, k in enumerate(heads))
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step < steps - 1:
                    sched.step()
                step += 1
    acc = accuracy(classifier, val_images, val_targets)
    log.info("domain classifier %s trained: held-out accuracy %s", datamodule.domain_name, acc)
    atomic_save({"state_dict": classifier.state_dict(), "accuracy": acc}, path)
    return classifier.eval(), acc
