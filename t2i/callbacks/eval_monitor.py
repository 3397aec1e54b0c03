"""Evaluation during training: every N generator steps and once more at the end of
training, score the generator on the val split (the same code as evaluate.py, fewer
samples), log the numbers as `val/*`, and keep `checkpoints/best.ckpt` by `eval.best_by`.
Choosing the best on val keeps the test split for the final, reported number.

`eval.best_by`: the metric behind best.ckpt. `auto` picks what the run is for: caption
faithfulness for a text-to-image model (`val/alignment_accuracy` where the data has
attributes, else `val/r_precision`), `val/fid` otherwise; a lower FID at a worse alignment
is not the better text-to-image model. For caption faithfulness (a share of val images)
`eval.best_by_tie` says how close counts as a tie: scores within it of the best one seen are
as faithful as each other within the val split's sampling noise (0.01: two standard errors of
an accuracy near 0.98 on 1000 images), and `eval.best_by_tie_break` picks among them: the
lower `val/fid` (default), or the higher `val/precision` (the share of samples that look
real: for a model whose samples hardly vary with z, recall ~0, FID mostly measures the
missing variety).

Under DDP the scoring runs on rank 0 (every image counts once); the numbers are then
broadcast so every rank agrees on whether to save (saving is collective)."""
from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import pytorch_lightning as pl
import torch

from t2i.evaluation.features import feature_space, is_captioned
from t2i.evaluation.image_evaluation import score_generator
from t2i.evaluation.matching import matching_evaluator
from t2i.evaluation.metric_table import AUTO_ORDER, BY_NAME, LOWER_IS_BETTER, MONITORED
from t2i.evaluation.settings import EvalSettings

log = logging.getLogger("t2i")
# The scores the monitor's log line names after val/fid: the monitored ones a run improves (no
# real ceilings or shuffled floors), KID left to the loggers.
LOGGED = tuple(k for k in MONITORED if BY_NAME[k].better and k not in ("fid", "kid_mean"))


def better(key: str, score: float, second: float, best: float, best_second: float, top: float | None = None,
           tie: float = 0.0, second_key: str = "fid") -> bool:
    """Is (score, second) better than the kept (best, best_second)? `second` is the tie-break
    metric `second_key` (fid: lower wins; precision: higher wins). `top`: the highest score
    seen before (higher-is-better keys). Scores within `tie` of the highest are tied, and ties
    go to the better second; tie=0: only equal scores are."""
    if second_key not in LOWER_IS_BETTER:
        second, best_second = -second, -best_second  # compare as lower-is-better below
    if key in LOWER_IS_BETTER:
        return second < best_second if score == best else score < best
    top = max(best if top is None or math.isnan(top) else top, score)
    if best < top - tie:  # the kept one fell out of the tie band: this score is the new top
        return True
    if score < top - tie:
        return False
    return second < best_second or (second == best_second and score > best)


class EvalMonitor(pl.Callback):
    def __init__(self, settings, dirpath: str | Path):
        """`settings`: EvalSettings (or an eval config, checked into them)."""
        self.settings = EvalSettings.of(settings)
        self.every = self.settings.every_n_steps
        self.samples = self.settings.monitor_samples
        self.path = Path(dirpath) / "best.ckpt"
        self.requested = self.settings.best_by_key
        self.key = self.requested  # resolved at the first score when auto
        self.tie = self.settings.best_by_tie
        self.tie_key = self.settings.tie_break_key
        self.best_score, self.best_step, self.last_step = math.nan, -1, -1
        self.best_second = math.inf if self.tie_key in LOWER_IS_BETTER else -math.inf  # nothing kept yet
        self.top_score = math.nan  # the highest score seen (higher-is-better keys)

    @property
    def metric(self) -> str:
        """The metric behind best.ckpt, as logged (`val/...`)."""
        return f"val/{self.key or 'fid'}"

    @property
    def state_key(self) -> str:
        return "EvalMonitor"

    def state_dict(self) -> dict:
        return {"best_by": self.key, "best_score": self.best_score, "tie_break": self.tie_key,
                "best_second": self.best_second, "best_step": self.best_step,
                "top_score": None if math.isnan(self.top_score) else self.top_score}

    def load_state_dict(self, state: dict) -> None:
        key = state.get("best_by", "fid")  # checkpoints before eval.best_by kept the best val/fid
        if self.requested is not None and key != self.requested:
            log.info("resumed with eval.best_by=val/%s (the checkpoint kept val/%s): the best is chosen anew",
                     self.requested, key)
            return
        self.key = key
        self.best_score, self.best_step = float(state["best_score"]), int(state["best_step"])
        # checkpoints before eval.best_by_tie_break kept best_fid (the tie-break was the FID)
        if state.get("tie_break", "fid") == self.tie_key:
            self.best_second = float(state.get("best_second", state.get(
                "best_fid", state["best_score"] if key == "fid" else math.inf)))
        top = state.get("top_score", self.best_score if key not in LOWER_IS_BETTER else None)
        self.top_score = math.nan if top is None else float(top)

    def resolve(self, metrics: dict) -> str:
        """The key behind best.ckpt: eval.best_by's, or for auto the first of AUTO_ORDER present."""
        if self.key is None:
            self.key = next((k for k in AUTO_ORDER if k in metrics), "fid")
            log.info("best.ckpt is chosen by %s (eval.best_by=auto; set eval.best_by= to change it)", self.metric)
        return self.key

    def consider(self, key: str, metrics: dict, step: int) -> bool:
        """Keep these scores as the best when they are better (see `better`); True if kept."""
        if key not in metrics:
            return False
        improved = math.isnan(self.best_score) or better(key, metrics[key], metrics[self.tie_key], self.best_score,
                                                          self.best_second, self.top_score, self.tie, self.tie_key)
        if key not in LOWER_IS_BETTER:
            self.top_score = metrics[key] if math.isnan(self.top_score) else max(self.top_score, metrics[key])
        if improved:
            self.best_score, self.best_second, self.best_step = metrics[key], metrics[self.tie_key], step
        return improved

    def prepare(self, datamodule) -> None:
        """Build the feature networks (domain classifier, matching evaluator: minutes the
        first time, cached after) before fit, so trainer.max_time is spent on training."""
        datamodule.setup("fit")
        feature_space(self.settings, datamodule, self.settings.cache)
        if is_captioned(datamodule) and not getattr(datamodule, "target_names", None):
            matching_evaluator(datamodule, self.settings.cache, self.settings.matching)

    def _split(self, datamodule) -> str:
        return "val" if getattr(datamodule, "val_set", None) is not None and len(datamodule.val_set) else "train"

    def score(self, trainer: pl.Trainer, pl_module) -> dict:
        dm = trainer.datamodule
        split = self._split(dm)
        evaluate = getattr(pl_module, "cpu_threads_applied", None)
        with evaluate() if evaluate else contextlib.nullcontext():
            metrics, _, _ = score_generator(pl_module, dm, self.settings, split, self.samples, reference=split)
        return {k: float(metrics[k]) for k in MONITORED if isinstance(metrics.get(k), (int, float))} | {
            "protocol": metrics["fid_protocol"]}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0:
            self.monitor(trainer, pl_module)

    # The last weights compete too: a run stopped by max_time (should_stop), max_steps or
    # max_epochs between two monitor steps would otherwise be judged by its last multiple of
    # every_n_steps. Every such stop ends an epoch, so the score is taken at the last epoch's
    # end, before ModelCheckpoint (Lightning runs checkpoint callbacks last) writes last.ckpt:
    # the monitor's state in last.ckpt includes it.
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
        if trainer.should_stop or (max_steps > 0 and trainer.global_step >= max_steps) \
                or (max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs):
            self.monitor(trainer, pl_module)

    def monitor(self, trainer, pl_module) -> None:
        """Score the current weights on val; best.ckpt when val/fid improved."""
        step = trainer.global_step
        if self.every <= 0 or trainer.fast_dev_run or trainer.sanity_checking or step == 0 \
                or step == self.last_step:
            return
        self.last_step = step
        metrics = self.score(trainer, pl_module) if trainer.is_global_zero else None
        metrics = trainer.strategy.broadcast(metrics, src=0)
        protocol = metrics.pop("protocol")
        logged = {f"val/{k}": v for k, v in metrics.items()}
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=step)
        for k, v in logged.items():
            trainer.callback_metrics[k] = torch.tensor(v)
        key = self.resolve(metrics)
        if key not in metrics:  # e.g. R-precision left out: too few distinct val captions
            log.warning("step %d: %s was not computed, so best.ckpt is not updated (this run has %s)", step,
                        self.metric, ", ".join(f"val/{k}" for k in metrics))
        improved = self.consider(key, metrics, step)
        if trainer.is_global_zero:
            log.info("step %d: val/fid %.3f%s (%s)%s", step, metrics["fid"],
                     "".join(f", val/{k} {metrics[k]:.3f}" for k in LOGGED if k in metrics),
                     protocol, f"  -> best.ckpt (by {self.metric})" if improved else "")
        if improved:
            trainer.save_checkpoint(self.path, weights_only=False)  # full state: best.ckpt resumes too

