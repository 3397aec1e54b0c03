"""The block printed when a training run ends: where the run folder is, its checkpoints,
the main metrics with their protocol, the pictures written, and the commands that
evaluate or resume it. Copes with metrics it does not know (they are counted) and with
checkpoints that are there or not."""
from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from t2i.evaluation.metric_table import HEADLINE
from t2i.run_folder import override

log = logging.getLogger("t2i")

# Headline metrics (the metric table's, in its order) where a run has them; everything else
# stays in metrics.json. MAIN_METRICS: its name before the table.
MAIN_METRICS = HEADLINE
# What says how the headline numbers were measured.
PROTOCOL_KEYS = ("fid_feature_extractor", "num_samples")
PICTURES = ("samples.png", "captions.png", "interpolation*.png", "inpainting.png", "confusion.png")


def _command_line() -> tuple[str, list[str]]:
    """The script and overrides this run was started with (Hydra's record of them)."""
    try:
        hydra_cfg = HydraConfig.get()
        return "train.py", [o for o in hydra_cfg.overrides.task if not o.startswith(("hydra.run.dir", "ckpt_path"))]
    except (ValueError, AttributeError):  # not started by Hydra (tests, notebooks)
        return "train.py", []


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def hydra_safe(text: str) -> str:
    """A caption reduced to words (letters, digits, spaces), so the printed command works pasted
    as is: Hydra's override grammar gives commas, quotes and brackets meanings of their own."""
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def summary_lines(cfg, metrics: dict, out_dir: Path, example_caption: str | None = None) -> list[str]:
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    checkpoints = [p for p in (ckpt_dir / "best.ckpt", ckpt_dir / "last.ckpt") if p.exists()]
    lines = [f"run folder   {out_dir}"]
    lines.append("checkpoints  " + (", ".join(str(p.relative_to(out_dir)) for p in checkpoints) or "none written"))

    main = [f"{k} {_fmt(metrics[k])}" for k in MAIN_METRICS if metrics.get(k) is not None]
    if main:
        protocol = ", ".join(f"{k}={metrics[k]}" for k in PROTOCOL_KEYS if metrics.get(k) is not None)
        lines.append("metrics      " + ", ".join(main) + (f"  ({protocol})" if protocol else ""))
        if (out_dir / "metrics.json").exists():
            written = json.loads((out_dir / "metrics.json").read_text())
            rest = len([k for k in written if k not in MAIN_METRICS and k not in PROTOCOL_KEYS])
            lines.append(f"             all {len(written)} values{f' ({rest} more)' if rest else ''}: metrics.json")
    elif metrics:
        lines.append("metrics      " + ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(metrics.items())[:6]
                                             if isinstance(v, (int, float))))

    if metrics.get("trainer_precision") is not None:
        lines.append(f"precision    trained in {metrics['trainer_precision']} (trainer.precision)")
    pictures = [p.name for pattern in PICTURES for p in sorted(out_dir.glob(pattern))]
    grids = sorted((out_dir / "samples").glob("step_*.png"))
    if grids:
        pictures.append(f"samples/step_*.png ({len(grids)}, last {grids[-1].name})")
    if pictures:
        lines.append("pictures     " + ", ".join(pictures))

    script, overrides = _command_line()
    if checkpoints:
        lines.append(f"evaluate     python evaluate.py {override('ckpt_path', checkpoints[0])}")
    if (ckpt_dir / "last.ckpt").exists():
        resume = [*map(shlex.quote, overrides), override("hydra.run.dir", out_dir), "ckpt_path=last"]
        lines.append(f"resume       python {script} " + " ".join(resume)
                     + "  (raise trainer.max_steps to train on)")
    caption = hydra_safe(example_caption or "")
    if checkpoints and caption:  # a text-to-image run: the user's next step is to type a caption
        lines.append(f"generate     python generate.py {override('ckpt_path', checkpoints[0])} "
                     f'text="{caption}" n=8')
    return lines


def print_summary(cfg, metrics: dict, out_dir: Path, example_caption: str | None = None) -> None:
    """Log the end-of-run block (to the console and the run's log file)."""
    lines = summary_lines(cfg, metrics, out_dir, example_caption)
    width = max(len(line) for line in lines)
    rule = "-" * min(width, 100)
    log.info("run finished\n%s\n%s\n%s", rule, "\n".join(lines), rule)
