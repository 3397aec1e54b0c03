"""Gather runs (a sweep's or several) into one report: a markdown table and PNG figures.

    python report.py DIR [DIR...] [--out OUT] [--curves KEY ...] [--samples] [--by KEY ...]
                         [--columns KEY ...]
    python report.py DIR [DIR...] --html OUT     one static page (see build_gallery)

A run is any folder holding `csv/metrics.csv` (the CSV logger's file). Each run is named
by its Hydra overrides (`.hydra/overrides.yaml`; the folder name when there are none).
Writes OUT/report.md (one row per run: final and best values of every logged metric, plus
the values of any metrics.json in the run folder), OUT/report_curves.png (one panel per
curve key, one line per run) and, with --samples, OUT/report_samples.png (each run's last
sample grid side by side). OUT defaults to the first DIR. `--by data.num_features` adds a
table of each metric's mean over the runs sharing each value of that override (a sweep's
main effects, e.g. 2 vs 4 features averaged over the other swept settings).
`--columns model last_step alignment_accuracy* fid ...` keeps only those columns of the main
table, in that order (exact names or globs); `model` is the run's model class (from
`.hydra/config.yaml`), `last_step` the last logged training step (`step` is the evaluated
checkpoint's, from metrics.json): a comparison of models
(e.g. GAN-CLS vs DF-GAN) without the dozens of train/* curves each GAN logs.
"""
from __future__ import annotations

import argparse
import base64
import csv
import fnmatch
import html
import json
import math
import re
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import yaml

from t2i.evaluation.metric_table import HEADLINE, direction, metric_protocol
from t2i.io import atomic_path, atomic_write_text

matplotlib.use("Agg")  # files only: no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# Which direction is better, and the headline metrics: t2i.evaluation.metric_table (`direction`).
# metrics.json strings longer than this (explanatory notes) stay out of the table.
MAX_TEXT = 40


@dataclass
class Run:
    path: Path
    overrides: list[str]
    # key -> list of (epoch or None, step or None, value), in logged order
    series: dict[str, list[tuple[float | None, float | None, float]]] = field(default_factory=dict)
    results: dict[str, object] = field(default_factory=dict)  # from metrics.json files
    model: str | None = None  # the model's class name, from .hydra/config.yaml

    @property
    def name(self) -> str:
        return " ".join(self.overrides) or self.path.name


# ------------------------------------------------------------------ reading
def _natural_key(path: Path) -> list:
    """Sort multirun job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def discover_runs(dirs: list[str | Path]) -> list[Path]:
    """Every folder under `dirs` (the dirs themselves included) with csv/metrics.csv."""
    found: set[Path] = set()
    for d in dirs:
        d = Path(d).expanduser()
        if not d.exists():
            raise FileNotFoundError(f"{d}: no such folder (give run or sweep directories)")
        found.update(p.parent.parent.resolve() for p in d.rglob("csv/metrics.csv"))
    return sorted(found, key=_natural_key)


def read_overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return []
    overrides = yaml.safe_load(path.read_text()) or []
    # A multirun records x=false as x=False: one spelling, so shared overrides match.
    return [re.sub(r"=(True|False)$", lambda m: "=" + m.group(1).lower(), str(o)) for o in overrides]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_metrics_csv(path: Path) -> dict[str, list[tuple[float | None, float | None, float]]]:
    """CSVLogger rows are sparse (each row holds what was logged at one step);
    returns each metric's values with the epoch and step they were logged at."""
    series: dict[str, list] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            epoch, step = _number(row.get("epoch")), _number(row.get("step"))
            for key, text in row.items():
                if key in ("epoch", "step") or key is None:
                    continue
                value = _number(text)
                if value is not None:
                    series.setdefault(key, []).append((epoch, step, value))
    return series


def read_results(run_dir: Path) -> dict[str, object]:
    """Flat values of metrics.json in the run folder (and one level below, e.g. eval/)."""
    results: dict[str, object] = {}
    for path in sorted(run_dir.glob("metrics.json")) + sorted(run_dir.glob("*/metrics.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for key, value in data.items() if isinstance(data, dict) else []:
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                if not (isinstance(value, str) and len(value) > MAX_TEXT):
                    results.setdefault(key, value)
    return results


def read_model(run_dir: Path) -> str | None:
    """The class name of the run's model (`model._target_` in Hydra's composed config)."""
    path = run_dir / ".hydra" / "config.yaml"
    try:
        target = ((yaml.safe_load(path.read_text()) or {}).get("model") or {}).get("_target_")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return str(target).rsplit(".", 1)[-1] if target else None


def load_run(run_dir: Path) -> Run:
    return Run(run_dir, read_overrides(run_dir), read_metrics_csv(run_dir / "csv" / "metrics.csv"),
               read_results(run_dir), read_model(run_dir))


# ------------------------------------------------------------------ naming
def short_names(runs: list[Run]) -> tuple[list[str], list[str]]:
    """Labels made of the overrides that differ between runs, and the ones all share."""
    if len(runs) < 2:
        return [r.name for r in runs], []
    common = [o for o in runs[0].overrides if all(o in r.overrides for r in runs[1:])]
    labels = [" ".join(o for o in r.overrides if o not in common) or r.path.name for r in runs]
    if len(set(labels)) < len(labels):  # identical overrides (e.g. several sweeps): add folder names
        labels = [f"{label} [{r.path.parent.name}/{r.path.name}]" for label, r in zip(labels, runs)]
    return labels, common


# ------------------------------------------------------------------ table
def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def summarise(run: Run) -> dict[str, str]:
    """One table row: each metric's final value, with its best when a direction is known."""
    row = {}
    for key, values in run.series.items():
        final = values[-1][2]
        best_of = {"max": max, "min": min}.get(direction(key))
        cell = _fmt(final)
        if best_of and len(values) > 1:
            best = best_of(v for _, _, v in values)
            if best != final:
                cell += f" (best {_fmt(best)})"
        row[key] = cell
    for key, value in run.results.items():
        row[key if key not in row else f"{key} (metrics.json)"] = _fmt(value)
    return row


def with_pseudo_columns(run: Run, row: dict[str, str]) -> dict[str, str]:
    """The pseudo-columns `model` and `last_step` (last logged step) beside a row's metrics."""
    steps = [s for values in run.series.values() for _, s, _ in values if s is not None]
    extra = {"model": run.model or "", "last_step": _fmt(int(max(steps))) if steps else ""}
    return {**extra, **row}


def pick_columns(rows: list[dict[str, str]], patterns: list[str]) -> list[str]:
    """The columns matching `patterns` (exact names or globs), in the patterns' order."""
    present: list[str] = []
    for row in rows:
        present += [k for k in row if k not in present]
    keys: list[str] = []
    for pattern in patterns:
        keys += [k for k in present if fnmatch.fnmatchcase(k, pattern) and k not in keys]
    return keys


def markdown_table(labels: list[str], rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    if columns:
        keys = pick_columns(rows, columns)
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for label, row in zip(labels, rows):
        lines.append(f"| {_fmt(label)} | " + " | ".join(row.get(k, "") for k in keys) + " |")
    return "\n".join(lines)


def numeric_values(run: Run) -> dict[str, float]:
    """What a grouped table averages: metrics.json numbers, and the final values of
    logged metrics with a known direction (losses, accuracies, ...)."""
    values = {k: v[-1][2] for k, v in run.series.items() if direction(k)}
    values.update({k: float(v) for k, v in run.results.items() if isinstance(v, (int, float))})
    return values


def override_value(run: Run, key: str) -> str:
    for override in run.overrides:
        name, _, value = override.partition("=")
        if name.lstrip("+~") == key:
            return value
    return "(not set)"


def grouped_table(runs: list[Run], key: str) -> str:
    """Mean of every numeric metric over the runs sharing each value of override `key`."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(override_value(run, key), []).append(run)
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in numeric_values(run) if m not in metrics]
    lines = [f"| {key} | runs | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for value, members in groups.items():
        cells = []
        for m in metrics:
            found = [numeric_values(r)[m] for r in members if m in numeric_values(r)]
            cells.append(_fmt(sum(found) / len(found)) if found else "")
        lines.append(f"| {_fmt(value)} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    grids = sorted((run_dir / "samples").glob("*.png"), key=_natural_key)
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


# ------------------------------------------------------------------ HTML gallery
GALLERY_PICTURES = ("captions.png", "samples.png", "interpolation*.png", "text_interpolation*.png")
SORT_JS = """
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], asc = th.dataset.order !== "asc";
  th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = asc ? "asc" : "desc";
  const key = row => row.cells[col].dataset.value ?? row.cells[col].textContent;
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    const cmp = isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y)) : nx - ny;
    return asc ? cmp : -cmp;
  });
  rows.forEach(r => body.appendChild(r));
}));
"""
GALLERY_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222 }
table { border-collapse: collapse; margin: 1em 0 }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right }
th { background: #eee; cursor: pointer; user-select: none }
th[data-order=asc]::after { content: " \\25B2" } th[data-order=desc]::after { content: " \\25BC" }
td:first-child, th:first-child { text-align: left }
.run { border-top: 2px solid #888; margin-top: 2em }
figure { display: inline-block; margin: 0.5em; vertical-align: top }
figure img { image-rendering: pixelated; max-width: 100%; border: 1px solid #ddd }
small { color: #666 }
"""


def data_uri(path: Path) -> str:
    """An image embedded in the page, so the page works standalone (no server, no folder)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def full_metrics(run_dir: Path) -> dict:
    """metrics.json as written (protocol strings included), {} when absent or unreadable."""
    try:
        data = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_pictures(run_dir: Path) -> list[Path]:
    found = [p for pattern in GALLERY_PICTURES for p in sorted(run_dir.glob(pattern))]
    sample = last_sample(run_dir)
    if sample is not None and sample not in found:
        found.append(sample)
    return list(dict.fromkeys(found))


def metrics_table_html(runs: list[Run], labels: list[str]) -> str:
    """One row per run: its evaluated metrics (metrics.json), each cell titled with its
    protocol, numbers sortable by value."""
    results = [full_metrics(r.path) for r in runs]
    keys = [k for k in HEADLINE if any(isinstance(m.get(k), (int, float)) for m in results)]
    keys += sorted({k for m in results for k, v in m.items() if k.startswith(tuple(keys)) and k not in keys
                    and isinstance(v, (int, float)) and not isinstance(v, bool)})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["run", "model", "step", *keys])
    rows = []
    for run, label, metrics in zip(runs, labels, results):
        step = metrics.get("step", "")
        cells = [f"<td>{html.escape(label)}</td>", f"<td>{html.escape(run.model or '')}</td>",
                 f'<td data-value="{step}">{step}</td>']
        for k in keys:
            value = metrics.get(k)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                protocol = metric_protocol(metrics, k) or "protocol not recorded"
                cells.append(f'<td data-value="{value}" title="{html.escape(protocol)}">{_fmt(value)}</td>')
            else:
                cells.append('<td data-value=""></td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            if keys else "<p>No metrics.json in these runs (train with evaluate_after_fit=true).</p>")


def protocols_html(metrics: dict) -> str:
    said = {k: v for k, v in metrics.items() if k.endswith("_protocol") and isinstance(v, str)}
    if metrics.get("checkpoint") is not None:
        said["evaluated"] = f"{metrics['checkpoint']} checkpoint, step {metrics.get('step', '?')}"
    return "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in said.items()) + "</ul>"


def build_gallery(dirs: list[str | Path], out: str | Path, curves: list[str] | None = None) -> Path:
    """One static HTML page (images embedded): the sortable metrics table with each
    number's protocol, then per run its pictures and training curves."""
    run_dirs = discover_runs(dirs)
    if not run_dirs:
        raise FileNotFoundError(f"no runs (folders with csv/metrics.csv) under {', '.join(map(str, dirs))}")
    out = Path(out).expanduser()
    page = out if out.suffix in (".html", ".htm") else out / "gallery.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    runs = [load_run(d) for d in run_dirs]
    labels, common = short_names(runs)
    parts = [f"<h1>{len(runs)} run(s)</h1>",
             f"<p>Shared overrides: <code>{html.escape(' '.join(common))}</code></p>" if common else "",
             "<h2>Metrics</h2><p><small>From each run's metrics.json; hover a number for its protocol, click a "
             "column to sort.</small></p>", metrics_table_html(runs, labels)]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (run, label) in enumerate(zip(runs, labels)):
            figures = [(p.name, p) for p in run_pictures(run.path)]
            keys = curve_keys([run], curves)
            if keys:
                (Path(tmp) / str(i)).mkdir()
                curve = plot_curves([run], [label], keys, Path(tmp) / str(i))
                if curve is not None:
                    figures.append(("training curves", curve))
            parts.append(f'<section class="run"><h2>{html.escape(label)}</h2><p><small>{html.escape(str(run.path))}'
                         f"</small></p>{protocols_html(full_metrics(run.path))}")
            parts += [f'<figure><img src="{data_uri(p)}" alt="{html.escape(name)}"><figcaption>{html.escape(name)}'
                      "</figcaption></figure>" for name, p in figures]
            parts.append("</section>" if figures else "<p>No pictures in this run.</p></section>")
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"><title>t2i runs</title>'
                    f"<style>{GALLERY_CSS}</style></head><body>{''.join(parts)}<script>{SORT_JS}</script>"
                    "</body></html>")
    return page


# ------------------------------------------------------------------ entry points
def build_report(dirs: list[str | Path], out: str | Path | None = None, curves: list[str] | None = None,
                 samples: bool = False, by: list[str] | None = None, columns: list[str] | None = None) -> Path:
    """Write OUT/report.md (+ report_curves.png, report_samples.png); returns report.md's path."""
    if not dirs:
        raise ValueError("give at least one run or sweep directory")
    run_dirs = discover_runs(dirs)
    if not run_dirs:
        raise FileNotFoundError(f"no runs (folders with csv/metrics.csv) under {', '.join(map(str, dirs))}: "
                                "train with the CSV logger (logger=default or logger=csv)")
    out = Path(out if out is not None else dirs[0]).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    runs = [load_run(d) for d in run_dirs]
    labels, common = short_names(runs)

    lines = ["# Report", "", f"{len(runs)} run(s) from {', '.join(str(d) for d in dirs)}."]
    if common:
        lines.append(f"Shared overrides: `{' '.join(common)}`.")
    lines += ["", "Cells: final value (best value over training where it differs; "
              "metrics.json values as written by evaluate).", "",
              markdown_table(labels, [with_pseudo_columns(r, summarise(r)) if columns else summarise(r) for r in runs],
                             columns), ""]
    for key in by or []:
        lines += [f"## By {key}", "", f"Mean over the runs with each value of `{key}`.", "",
                  grouped_table(runs, key), ""]
    curves_png = plot_curves(runs, labels, curve_keys(runs, curves), out)
    if curves_png:
        lines += ["## Curves", "", f"![curves]({curves_png.name})", ""]
    if samples:
        samples_png = plot_samples(runs, labels, out)
        lines += ["## Samples", "", f"![samples]({samples_png.name})" if samples_png
                  else "No sample grids (samples/*.png) found in these runs.", ""]
    lines += ["## Runs", ""] + [f"- {label}: `{r.path}`" for label, r in zip(labels, runs)] + [""]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python report.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", help="run or sweep directories (searched for csv/metrics.csv)")
    parser.add_argument("--out", default=None, help="output folder (default: the first DIR)")
    parser.add_argument("--curves", nargs="+", default=None, metavar="KEY",
                        help="metric keys or globs to plot, e.g. val/loss 'train/*' (default: keys ending in loss)")
    parser.add_argument("--samples", action="store_true", help="add each run's last sample grid side by side")
    parser.add_argument("--by", nargs="+", default=None, metavar="KEY",
                        help="override keys to group by, e.g. data.num_features: mean of each metric per value")
    parser.add_argument("--columns", nargs="+", default=None, metavar="KEY",
                        help="main-table columns to keep, in order (names or globs); also 'model' and 'last_step', "
                             "e.g. model last_step 'alignment_accuracy*' fid precision recall")
    parser.add_argument("--html", default=None, metavar="OUT",
                        help="write one static page instead (OUT.html, or OUT/gallery.html): the sortable metrics "
                             "table with each number's protocol, each run's pictures and training curves")
    args = parser.parse_args(argv)
    if args.html:
        print(build_gallery(args.dirs, args.html, args.curves))
        return
    report = build_report(args.dirs, args.out, args.curves, args.samples, args.by, args.columns)
    print(report)


if __name__ == "__main__":
    main()
