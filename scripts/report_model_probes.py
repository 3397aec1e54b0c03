"""Issue 34's probes of the source report's model: val/colour_accuracy and val/r_precision
against training steps, one line per run folder (the in-training monitor's numbers from its
csv logger), the shuffled R-precision floor dotted. Usage:

    python scripts/report_model_probes.py RUN_DIR [RUN_DIR ...] --out docs/images/report_model_probes.png

Each RUN_DIR is a train.py run with `logger=csv eval.every_n_steps=N`; its label is the folder
name. The runs and their commands are in docs/text_to_image.md."""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} of the monitor's val/* numbers in a run's csv log."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(run / "csv" / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            for key in ("val/colour_accuracy", "val/r_precision", "val/r_precision_shuffled"):
                if row.get(key):
                    out.setdefault(key, []).append((int(row["step"]), float(row[key])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fig, (colour, r_prec) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in args.runs:
        c = curves(run)
        line, = colour.plot(*zip(*c["val/colour_accuracy"]), marker="o", ms=3, label=run.name)
        r_prec.plot(*zip(*c["val/r_precision"]), marker="o", ms=3, color=line.get_color(), label=run.name)
        r_prec.plot(*zip(*c["val/r_precision_shuffled"]), ls=":", color=line.get_color())
    colour.set(xlabel="generator steps", ylabel="val colour_accuracy", title="colour named in the caption")
    r_prec.set(xlabel="generator steps", ylabel="val R-precision (dotted: shuffled floor)",
               title="caption ranked among 100 (matching judge)")
    colour.legend(fontsize=7)
    for ax in (colour, r_prec):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
