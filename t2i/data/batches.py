"""Items of a data module's splits as batches, in the order every evaluation uses. A data
utility: it imports neither the evaluation nor a task."""
from __future__ import annotations

import torch


def split_dataset(datamodule, split: str):
    """A split's dataset (set up on demand): train | val | test."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train|val|test, got {split!r}")
    if getattr(datamodule, "train_set", None) is None or (split == "test" and datamodule.test_set is None):
        datamodule.setup("test" if split == "test" else "fit")
    dataset = {"train": datamodule.train_set, "val": datamodule.val_set, "test": datamodule.test_set}[split]
    if dataset is None or len(dataset) == 0:
        raise ValueError(f"{type(datamodule).__name__} has no {split} split to evaluate on")
    return dataset


def spread_indices(size: int, n: int) -> list[int]:
    """n item indices spread evenly over a split of `size` items (all of them, in order,
    when n >= size). Photo splits are sorted by class: the first 1,000 of Oxford-102's
    1,464 test images fall in 15 of its 20 test classes, a stride reaches all 20."""
    n = min(int(n), size)
    return [i * size // n for i in range(n)]


def eval_batches(datamodule, n: int, batch_size: int, split: str = "test"):
    """Up to n items of a split, spread over it (`spread_indices`), as batches (real images
    and their conditioning)."""
    dataset = split_dataset(datamodule, split)
    collate = getattr(datamodule, "collate_fn", None) or torch.utils.data.default_collate
    rows = spread_indices(len(dataset), n)
    for s in range(0, len(rows), batch_size):
        yield collate([dataset[i] for i in rows[s:s + batch_size]])


def split_images(datamodule, split: str, n: int, batch_size: int = 256) -> torch.Tensor:
    """n real images of a split spread over it (`eval_batches`), float in [-1, 1]."""
    return torch.cat([b["image"] for b in eval_batches(datamodule, n, batch_size, split)])

