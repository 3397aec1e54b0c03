"""Scoring a binary classifier (evaluate.py for the sentiment RNNs): the per-stage
metrics the task also logs while training (loss, accuracy, F1), test_acc / test_f1 /
test_loss / the confusion counts for metrics.json, and confusion.png. The one module in
t2i that draws a matplotlib figure, so the file backend is chosen here, before pyplot."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy, BinaryConfusionMatrix, BinaryF1Score

from t2i.atomic_files import atomic_path
from t2i.tensors import evaluating

matplotlib.use("Agg")  # files only: no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


class StageMetrics(torch.nn.Module):
    """Loss (mean over items), accuracy and F1 of one stage, accumulated over an epoch."""

    def __init__(self):
        super().__init__()
        self.loss, self.acc, self.f1 = MeanMetric(), BinaryAccuracy(), BinaryF1Score()

    def update(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss.update(loss.detach(), weight=labels.numel())
        self.acc.update(logits.detach(), labels)  # logits: torchmetrics applies the sigmoid
        self.f1.update(logits.detach(), labels)

    def compute_and_reset(self) -> dict[str, torch.Tensor]:
        values = {"loss": self.loss.compute(), "acc": self.acc.compute(), "f1": self.f1.compute()}
        self.reset()
        return values

    def reset(self) -> None:
        for metric in (self.loss, self.acc, self.f1):
            metric.reset()


@torch.no_grad()
def predict_split(model, datamodule, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of a whole split through the data module's own loader, in eval mode."""
    datamodule.setup("test" if split == "test" else "fit")
    loader = {"train": datamodule.train_dataloader, "val": datamodule.val_dataloader,
              "test": datamodule.test_dataloader}[split]()
    logits, labels = [], []
    with evaluating(model):
        for batch in loader:
            logits.append(model(batch["tokens"].to(model.device), batch["length"]).float().cpu())
            labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def evaluate_classifier(model, datamodule, out_dir: Path, title: str) -> dict:
    """metrics.json values (test_acc, test_f1 are the contract) and confusion.png."""
    logits, labels = predict_split(model, datamodule, "test")
    metrics = StageMetrics()
    loss = F.binary_cross_entropy_with_logits(logits, labels.float())
    metrics.update(loss, logits, labels)
    values = metrics.compute_and_reset()
    confusion = BinaryConfusionMatrix()(logits, labels)  # rows: true neg, pos; columns: predicted
    save_confusion_png(confusion, Path(out_dir) / "confusion.png", title)
    (tn, fp), (fn, tp) = confusion.tolist()
    return {"test_acc": float(values["acc"]), "test_f1": float(values["f1"]), "test_loss": float(values["loss"]),
            "test_reviews": int(labels.numel()), "test_tn": tn, "test_fp": fp, "test_fn": fn, "test_tp": tp}


def save_confusion_png(confusion: torch.Tensor, path: Path, title: str) -> Path:
    counts = confusion.numpy()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(counts, cmap="Blues")
    names = ["negative", "positive"]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), n in ((ij, counts[ij]) for ij in [(0, 0), (0, 1), (1, 0), (1, 1)]):
        ax.text(j, i, str(int(n)), ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
    accuracy = counts.trace() / max(1, counts.sum())
    ax.set_title(f"{title}\naccuracy {accuracy:.3f} ({int(counts.sum())} reviews)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
