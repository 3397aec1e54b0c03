"""The one table of metrics: each name, the metrics.json key whose protocol line says how
it was measured, which direction is better, and where it is shown. The in-training monitor
(`val/*` and best.ckpt), the final summary, the exported model card, report.py's tables
and its HTML gallery all read it."""
from __future__ import annotations

import re
from dataclasses import dataclass

MONITOR, SUMMARY, GALLERY = "monitor", "summary", "gallery"  # where a metric is shown


@dataclass(frozen=True)
class Metric:
    name: str            # the metrics.json key (`val/<name>` when the monitor logs it)
    protocol: str        # the key whose `<protocol>_protocol` line says how it was measured
    better: str | None   # "higher" | "lower" | None (a reference: a real ceiling, a shuffled floor)
    shown: tuple[str, ...]  # MONITOR: logged as val/<name> during training; SUMMARY: a headline
                            # number of the summary, model card and gallery


_BOTH, _HEAD, _VAL = (MONITOR, SUMMARY, GALLERY), (SUMMARY, GALLERY), (MONITOR,)
METRICS = (
    Metric("fid", "fid", "lower", _BOTH),
    Metric("kid_mean", "fid", "lower", _BOTH),
    Metric("precision", "fid", "higher", _BOTH),
    Metric("recall", "fid", "higher", _BOTH),
    Metric("r_precision", "r_precision", "higher", _BOTH),
    Metric("r_precision_real", "r_precision", None, _VAL),
    Metric("r_precision_shuffled", "r_precision", None, _VAL),
    Metric("alignment_accuracy", "alignment_accuracy", "higher", _BOTH),
    Metric("outline_closed", "alignment_accuracy", "higher", _BOTH),
    Metric("colour_accuracy", "colour_accuracy", "higher", _BOTH),
    Metric("is_mean", "fid", "higher", _HEAD),
    Metric("test_acc", "test_acc", "higher", _HEAD),
    Metric("test_f1", "test_f1", "higher", _HEAD),
    Metric("psnr_centre", "psnr_centre", "higher", _HEAD),
    Metric("ssim_centre", "ssim_centre", "higher", _HEAD),
    Metric("l1_centre", "l1_centre", "lower", _HEAD),
)
BY_NAME = {m.name: m for m in METRICS}

# the order the monitor logs (val/*) and the summary lists (headline) them
MONITORED = ("fid", "kid_mean", "precision", "recall", "r_precision", "r_precision_real", "r_precision_shuffled",
             "alignment_accuracy", "outline_closed", "colour_accuracy")
HEADLINE = ("fid", "kid_mean", "precision", "recall", "r_precision", "colour_accuracy", "alignment_accuracy",
            "outline_closed", "is_mean", "test_acc", "test_f1", "psnr_centre", "ssim_centre", "l1_centre")
assert set(MONITORED) == {m.name for m in METRICS if MONITOR in m.shown}
assert set(HEADLINE) == {m.name for m in METRICS if SUMMARY in m.shown}
LOWER_IS_BETTER = tuple(m.name for m in METRICS if m.better == "lower")
TIE_BREAKS = ("fid", "precision")  # eval.best_by_tie_break's choices
AUTO_ORDER = ("alignment_accuracy", "r_precision")  # eval.best_by=auto: the first the scores contain, else fid

# Logged names outside the table (losses, training curves): words that say the direction.
HIGHER_WORDS = ("acc", "psnr", "ssim", "f1", "auc", "is_mean", "precision", "recall", "alignment")
LOWER_WORDS = ("loss", "mse", "mae", "fid", "kid_mean", "error", "perplexity", "bpd")
REFERENCE = re.compile(r"_(shuffled|real|baseline)(/|$)")


def direction(key: str) -> str | None:
    """"max" / "min" for a metric where higher / lower is better, None where neither is:
    the references beside a score (`*_shuffled` floors, `*_real` ceilings, `*_baseline`
    fills) describe the data and the judge, not the model, so they have no best value.
    The table's word first (`val/fid` -> fid); other names by the words they contain."""
    name = key.lower()
    if REFERENCE.search(name):
        return None
    metric = BY_NAME.get(name.removeprefix("val/").removeprefix("test/"))
    if metric is not None:
        return {"higher": "max", "lower": "min"}.get(metric.better)
    if any(w in name for w in HIGHER_WORDS):
        return "max"
    if any(w in name for w in LOWER_WORDS):
        return "min"
    return None


def metric_protocol(metrics: dict, key: str) -> str | None:
    """How `key` was measured: its own `<key>_protocol`, else its table row's protocol key
    (precision -> fid_protocol), else its family's (r_precision_real -> r_precision_protocol);
    None if unsaid."""
    if isinstance(metrics.get(f"{key}_protocol"), str):
        return metrics[f"{key}_protocol"]
    head = BY_NAME[key].protocol if key in BY_NAME else key
    while head:
        if isinstance(metrics.get(f"{head}_protocol"), str):
            return metrics[f"{head}_protocol"]
        head = head.rpartition("_")[0]
    return None
