"""Binary sentiment of reviews with a recurrent classifier (RNN | GRU | LSTM): automatic
optimisation, loss / accuracy / F1 logged for train, val and test, `val/error` per epoch
for the encoder comparison, training throughput in reviews/s, and `evaluate` writing
test_acc, test_f1 and a confusion matrix picture."""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from t2i.evaluation.classification import StageMetrics, evaluate_classifier
from t2i.nets.rnn import RecurrentClassifier
from t2i.tasks.cpu_threads import CPUThreads
from t2i.text.word2vec import check_settings, fit_word_vectors

log = logging.getLogger("t2i")
STAGES = ("train", "val", "test")
# model.word2vec: the word2vec settings (t2i.text.word2vec.fit_word_vectors) plus where to cache the vectors
WORD2VEC_KEYS = ("sg", "window", "min_count", "epochs", "seed", "cache_dir")


class CosineDecay:
    """Learning-rate factor: 1 at step 0, `floor` at `total` steps and after (picklable,
    so checkpoints keep the scheduler's state)."""

    def __init__(self, total: int, floor: float = 0.05):
        self.total, self.floor = max(1, total), floor

    def __call__(self, step: int) -> float:
        progress = min(step, self.total) / self.total
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


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
        check_settings(dict(word2vec or {}), WORD2VEC_KEYS, "model.word2vec")
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
        tokens = datamodule.train_token_lists()
        settings = {k: v for k, v in self.word2vec.items() if k != "cache_dir"}
        vectors = fit_word_vectors(tokens, datamodule.vocab, self.net.embedding.embedding_dim, cache_dir=cache_dir,
                                   dim_setting="model.embedding_dim", **settings)
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
    def evaluate(self, datamodule, settings, out_dir) -> dict:
        """test_acc, test_f1, ... and confusion.png (t2i.evaluation.classification)."""
        with self.cpu_threads_applied():
            return evaluate_classifier(self, datamodule, out_dir, f"{self.hparams.encoder} on IMDB test")
