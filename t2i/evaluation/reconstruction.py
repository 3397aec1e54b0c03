"""Scoring a regression model that predicts images (evaluate.py for the GNN and the
autoencoder): val/test MSE over the whole splits, test MSE relative to the mean-image
baseline (test_nmse: 1 = no better than the mean image, 0 = perfect), and a
reconstruction grid of test images (reconstructions.png)."""
from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torchvision.utils import save_image

from t2i.atomic_files import atomic_path
from t2i.data.batches import eval_batches
from t2i.evaluation.settings import EvalSettings
from t2i.images import grid
from t2i.tensors import evaluating, to_device


def split_mse(model, datamodule, split: str, batch_size: int) -> float:
    """Mean per-pixel squared error of `model.predict` over a whole split (images in [-1, 1])."""
    total, count = 0.0, 0
    with evaluating(model):
        for batch in eval_batches(datamodule, 10 ** 9, batch_size, split):
            batch = to_device(batch, model.device)
            total += F.mse_loss(model.predict(batch), batch["image"], reduction="sum").item()
            count += batch["image"].numel()
    return total / max(1, count)


def mean_image_mse(datamodule, split: str, batch_size: int) -> float:
    """The error of predicting the training split's mean image for every image: what a
    model that knows nothing about each image scores. Dividing by it makes errors
    comparable between data variants (filled shapes have more pixels to get wrong)."""
    total, count = 0.0, 0
    for batch in eval_batches(datamodule, 10 ** 9, batch_size, "train"):
        total, count = total + batch["image"].double().sum(0), count + batch["image"].shape[0]
    mean = (total / max(1, count)).float()
    error, pixels = 0.0, 0
    for batch in eval_batches(datamodule, 10 ** 9, batch_size, split):
        error += (batch["image"] - mean).pow(2).sum().item()
        pixels += batch["image"].numel()
    return error / max(1, pixels)


def evaluate_reconstruction(model, datamodule, settings, out_dir: Path) -> dict:
    """val_mse, test_mse, test_nmse and reconstructions.png (the model's `preview`: real
    and predicted images side by side)."""
    bs = EvalSettings.of(settings).batch_size
    metrics = {f"{split}_mse": split_mse(model, datamodule, split, bs) for split in ("val", "test")}
    metrics["test_nmse"] = metrics["test_mse"] / max(1e-12, mean_image_mse(datamodule, "test", bs))
    batch = to_device(next(eval_batches(datamodule, 64, 64, "test")), model.device)
    with evaluating(model), atomic_path(Path(out_dir) / "reconstructions.png") as tmp:
        save_image(grid(model.preview(batch).float().cpu(), nrow=8), tmp)
    return metrics
