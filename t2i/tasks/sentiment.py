"""Binary sentiment of reviews with a recurrent classifier (RNN | GRU | LSTM): automatic
optimisation, loss / accuracy / F1 logged for train, val and test, `val/error` per epoch
for the encoder comparison, training throughput in reviews/s, and `evaluate` writing
test_acc, test_f1 and a confusion matrix picture."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy, BinaryConfusionMatrix, BinaryF1Score

from t2i.io import atomic_path
from t2i.nets.rnn import RecurrentClassifier
from t2i.tasks.cpu_threads import CPUThreads

log = logging.getLogger("t2i")
STAGES = ("train", "val", "test")


class CosineDecay:
    """Learning-rate factor: 1 at step 0, `floor` at `total` steps and after (picklable,
    so checkpoints keep the scheduler's state)."""

    def __init__(self, total: int, floor: float = 0.05):
        self.total, self.floor = max(1, total), floor

    def __call__(self, step: int) -> float:
        progress = min(step, self.total) / self.total
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class StageMetrics(torch.nn.Module):
    """Loss (mean over reviews), accuracy and F1 of one stage, accumulated over an epoch."""

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


class SentimentClassifier(CPUThreads, pl.LightningModule):
    def __init__(self, vocab_size: int, optimizer: Callable, encoder: str = "lstm", embedding_dim: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.5,
                 embedding_dropout: float = 0.2, pooling: str = "last", pack: bool | str = "auto",
                 embedding_init: str = "random",
                 word2vec: dict | None = None, lr_schedule: str = "cosine",
                 cpu_threads: int | None = 1):
        super().__init__()
        if embedding_init not in ("random", "word2vec"):
            raise ValueError(f"model.embedding_init must be 'random' or 'word2vec', got {embedding_init!r}")
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"model.lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
        self.save_hyperparameters(ignore=["optimizer"])
        self.net = RecurrentClassifier(vocab_size, embedding_dim, hidden_size, encoder, num_layers, bidirectional,
                                       dropout, embedding_dropout, pooling, pack)
        self.optimizer, self.lr_schedule = optimizer, lr_schedule
        self.embedding_init, self.word2vec = embedding_init, dict(word2vec or {})
        self.init_cpu_threads(cpu_threads)  # 1: small RNN steps gain nothing from threads (t2i/tasks/cpu_threads.py)
        # "train_metrics", not "train": a submodule may not shadow nn.Module.train
        self.stage_metrics = torch.nn.ModuleDict({f"{s}_metrics": StageMetrics() for s in STAGES})
        self._train_seconds, self._train_reviews, self._batch_start = 0.0, 0, 0.0

    # ---------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """CPU threads (CPUThreads.setup), then the word2vec init: vectors trained on
        the training reviews (cached), standardised per dimension so they have the scale
        of a default N(0, 1) embedding. On resume, the checkpoint's weights replace them."""
        super().setup(stage)
        if stage != "fit" or self.embedding_init != "word2vec":
            return
        datamodule = self.trainer.datamodule
        self.init_embedding_from_word2vec(datamodule, cache_dir=self.word2vec.get("cache_dir"))

    def init_embedding_from_word2vec(self, datamodule, cache_dir: str | None = None) -> int:
        from t2i.text.word2vec import WordVectors, train_word2vec

        tokens = datamodule.train_token_lists()
        settings = {k: v for k, v in self.word2vec.items() if k in ("sg", "window", "min_count", "epochs")}
        kv = train_word2vec(tokens, dim=self.net.embedding.embedding_dim, seed=int(self.word2vec.get("seed", 0)),
                            cache_dir=cache_dir, **settings)
        vectors = WordVectors.build(datamodule.vocab, kv, tokens, standardize=True)
        weight = self.net.embedding.weight
        n = min(len(vectors.vocab), weight.shape[0])
        with torch.no_grad():
            known = vectors.known[:n]
            weight[:n][known] = vectors.matrix[:n][known].to(weight)
            weight[0].zero_()  # <pad>
        log.info("embedding initialised from word2vec for %d of %d words", int(known.sum()), n)
        return int(known.sum())

    # ---------------------------------------------------------------- steps
    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(tokens, lengths)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["tokens"], batch["length"])
        labels = batch["label"]
        loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        self.stage_metrics[f"{stage}_metrics"].update(loss, logits, labels)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("train/batch_loss", loss.detach(), prog_bar=True, batch_size=batch["label"].numel())
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        metrics = self.stage_metrics[f"{stage}_metrics"]
        if not metrics.acc.update_called:  # e.g. no validation batches this epoch
            return {}
        values = metrics.compute_and_reset()
        logs = {f"{stage}/{k}": v for k, v in values.items()}
        if stage == "val":
            logs["val/error"] = 1.0 - values["acc"]  # the source report's curve: validation error per epoch
        self.log_dict(logs, prog_bar=stage == "val")
        return values

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_epoch("val")
        else:  # the sanity check's batches are no epoch's result
            self.stage_metrics["val_metrics"].reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # ------------------------------------------------------- throughput
    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, outputs, batch: dict, batch_idx: int) -> None:
        # forward + backward + optimiser step, without data loading or validation
        self._train_seconds += time.perf_counter() - self._batch_start
        self._train_reviews += batch["label"].numel()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        if self._train_seconds > 0:
            self.log("train/reviews_per_s", self._train_reviews / self._train_seconds)
        self._train_seconds, self._train_reviews = 0.0, 0

    def configure_optimizers(self):
        """The optimiser (Adam by default) with `lr_schedule`: cosine decays the rate per
        step to 5% over the run's planned steps, so the final weights (those evaluated)
        are not caught mid-oscillation; constant keeps it."""
        optimizer = self.optimizer(params=self.parameters())
        if self.lr_schedule == "constant":
            return optimizer
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            log.warning("model.lr_schedule=cosine needs trainer.max_epochs or max_steps: using a constant rate")
            return optimizer
        cosine = CosineDecay(int(total), floor=0.05)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, cosine), "interval": "step"}}

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict_split(self, datamodule, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of a whole split, in eval mode."""
        datamodule.setup("test" if split == "test" else "fit")
        loader = {"train": datamodule.train_dataloader, "val": datamodule.val_dataloader,
                  "test": datamodule.test_dataloader}[split]()
        was_training = self.training
        self.eval()
        logits, labels = [], []
        for batch in loader:
            logits.append(self(batch["tokens"].to(self.device), batch["length"]).float().cpu())
            labels.append(batch["label"])
        self.train(was_training)
        return torch.cat(logits), torch.cat(labels)

    def evaluate(self, datamodule, eval_cfg, out_dir) -> dict:
        """metrics.json values (test_acc, test_f1 are the contract) and confusion.png."""
        with self.cpu_threads_applied():
            logits, labels = self.predict_split(datamodule, "test")
        metrics = StageMetrics()
        loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        metrics.update(loss, logits, labels)
        values = metrics.compute_and_reset()
        confusion = BinaryConfusionMatrix()(logits, labels)  # rows: true neg, pos; columns: predicted
        save_confusion_png(confusion, Path(out_dir) / "confusion.png", f"{self.hparams.encoder} on IMDB test")
        (tn, fp), (fn, tp) = confusion.tolist()
        return {"test_acc": float(values["acc"]), "test_f1": float(values["f1"]), "test_loss": float(values["loss"]),
                "test_reviews": int(labels.numel()), "test_tn": tn, "test_fp": fp, "test_fn": fn, "test_tp": tp}


def save_confusion_png(confusion: torch.Tensor, path: Path, title: str) -> Path:
    import matplotlib  # defers matplotlib (start-up)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # defers matplotlib

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
