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
from pathlib import Path

from reporting.figures import curve_keys, last_sample, plot_curves, plot_samples, xy
from reporting.gallery import build_gallery
from reporting.runs import Run, discover_runs, load_run, short_names
from reporting.tables import grouped_table, markdown_table, summarise, with_pseudo_columns
from t2i.atomic_files import atomic_write_text
from t2i.evaluation.metric_table import direction

# what tests and users import from report.py
__all__ = ["Run", "build_gallery", "build_report", "direction", "discover_runs", "last_sample", "load_run", "main",
           "short_names", "summarise", "xy"]


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
