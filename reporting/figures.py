"""report.py's figures: training curves (one panel per key, one line per run) and each
run's last sample grid side by side, as PNG files."""
from __future__ import annotations

import fnmatch
import math
import textwrap
from pathlib import Path

import matplotlib

from reporting.runs import Run, natural_key
from t2i.atomic_files import atomic_path
from t2i.evaluation.metric_table import direction

matplotlib.use("Agg")  # files only: no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


# ------------------------------------------------------------------ figures
def curve_keys(runs: list[Run], patterns: list[str] | None) -> list[str]:
    """Keys matching the patterns (exact names or globs such as 'val/*'); by default
    every logged key ending in 'loss'."""
    logged: list[str] = []
    for r in runs:
        logged += [k for k in r.series if k not in logged]
    if not patterns:
        return [k for k in logged if k.endswith("loss")]
    keys = []
    for pattern in patterns:
        keys += [k for k in logged if fnmatch.fnmatchcase(k, pattern) and k not in keys]
    return keys


def xy(values: list[tuple]) -> tuple[list[float], list[float], str]:
    """x = epoch when the metric has one value per epoch (epoch-level logging), else step."""
    epochs = [e for e, _, _ in values]
    if all(e is not None for e in epochs) and len(set(epochs)) == len(epochs):
        return epochs, [v for _, _, v in values], "epoch"
    steps = [s if s is not None else i for i, (_, s, _) in enumerate(values)]
    return steps, [v for _, _, v in values], "step"


def plot_curves(runs: list[Run], labels: list[str], keys: list[str], out: Path) -> Path | None:
    if not keys:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    styles = ("-", "--", ":", "-.")
    lines = {}  # one legend entry per run, whichever panel drew it
    for ax, key in zip(axes.flat, keys):
        xlabel = "step"
        for i, (run, label) in enumerate(zip(runs, labels)):
            if key in run.series:
                x, y, xlabel = xy(run.series[key])
                (lines[label],) = ax.plot(x, y, marker="." if len(x) < 30 else None, color=colours(i % 20),
                                          linestyle=styles[(i // 20) % len(styles)], label=label)
        ax.set_title(key)
        ax.set_xlabel(xlabel)
        if direction(key) == "min" and all(v > 0 for r in runs for _, _, v in r.series.get(key, [])):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    # Full run names in one legend right of the panels (names carry the overrides).
    fig.legend(list(lines.values()), ["\n".join(textwrap.wrap(k, 60)) for k in lines], loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    path = out / "report_curves.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def last_sample(run_dir: Path) -> Path | None:
    """The run's latest sample/reconstruction grid: samples/*.png (step-numbered names
    sort in time order), else a samples.png written by evaluate."""
    grids = sorted((run_dir / "samples").glob("*.png"), key=natural_key)
    if grids:
        return grids[-1]
    fallback = run_dir / "samples.png"
    return fallback if fallback.exists() else None


def plot_samples(runs: list[Run], labels: list[str], out: Path) -> Path | None:
    pictures = [(label, last_sample(r.path)) for r, label in zip(runs, labels)]
    pictures = [(label, p) for label, p in pictures if p is not None]
    if not pictures:
        return None
    cols = min(4, len(pictures))
    rows = math.ceil(len(pictures) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 4.0 * rows), squeeze=False)
    for ax, (label, path) in zip(axes.flat, pictures):
        ax.imshow(plt.imread(path), cmap="gray", interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(f"{label} ({path.name})", 40)), fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    path = out / "report_samples.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
