"""Evaluation routines shared by tasks: each task's `evaluate` calls one of these."""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

from t2i.callbacks.samples import grid
from t2i.metrics.image_quality import image_quality


def eval_batches(datamodule, n: int, batch_size: int, split: str = "test"):
    """Up to n items of a split as batches (real images and their conditioning)."""
    datamodule.setup("test" if split == "test" else "fit")
    dataset = {"train": datamodule.train_set, "val": datamodule.val_set, "test": datamodule.test_set}[split]
    collate = getattr(datamodule, "collate_fn", None) or torch.utils.data.default_collate
    n = min(n, len(dataset))
    for s in range(0, n, batch_size):
        yield collate([dataset[i] for i in range(s, min(n, s + batch_size))])


def evaluate_unconditional(model, datamodule, eval_cfg, out_dir: Path) -> dict:
    """Generate eval.num_samples images; FID/KID(/IS) against as many test images."""
    n, bs = int(eval_cfg.num_samples), int(eval_cfg.batch_size)
    real = torch.cat([b["image"] for b in eval_batches(datamodule, n, bs)])
    fake = model.sample(eval_batches(datamodule, n, bs))
    save_image(grid(fake[:64]), Path(out_dir) / "samples.png")
    cache_dir = eval_cfg.get("cache_dir") or ".cache"
    return image_quality(real, fake, eval_cfg, datamodule, cache_dir)
