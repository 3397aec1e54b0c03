"""What an exported generator says about itself: config.json (`describe`: the architecture,
its settings, what it was trained on) and README.md (`model_card`: the metric table's
headline numbers with their protocol, a sample grid, how to use it). t2i.pretrained writes
and reads the folder."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from t2i.data.caption_datamodule import CaptionDataModule
from t2i.evaluation.metric_table import HEADLINE, metric_protocol

SAMPLES = "samples.png"
FORMAT_VERSION = 1
TRAINING_ONLY = ("_target_", "optimizer_g", "optimizer_d", "scheduler")  # model settings a generator does not need


def describe(model, architecture: str, text: CaptionDataModule | None, cfg, step: int, ckpt_path: Path) -> dict:
    """config.json: everything needed to rebuild and describe the generator."""
    settings = {k: v for k, v in dict(cfg.model).items() if k not in TRAINING_ONLY}
    data = dict(cfg.data)
    return {"format_version": FORMAT_VERSION, "library": "t2i", "architecture": architecture,
            "model_class": type(model).__name__, "model": settings,
            "image_size": int(settings.get("image_size", data.get("image_size", 0))),
            "channels": int(settings.get("channels", data.get("channels", 3))),
            "ema": getattr(model, "generator_ema", None) is not None,
            "text": text.text_settings() if text is not None else None,
            "examples": text.example_captions() if text is not None else [],
            "trained_on": {"dataset": str(data.get("_target_", "")).rsplit(".", 1)[-1],
                           "name": getattr(text, "dataset_name", None) or Path(str(data.get("root", ""))).name,
                           "image_size": data.get("image_size")},
            "task_name": cfg.get("task_name"), "seed": cfg.get("seed"), "step": step,
            "checkpoint": ckpt_path.name}


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metrics_markdown(metrics: dict) -> str:
    """The headline metrics as a markdown table, each with its protocol (card and demo)."""
    rows = [(k, metrics[k]) for k in HEADLINE if isinstance(metrics.get(k), (int, float))]
    rows += [(k, v) for k, v in sorted(metrics.items()) if k.endswith(("_real", "_shuffled", "_std"))
             and isinstance(v, (int, float)) and (k, v) not in rows]
    if not rows:
        return "The run wrote no metrics.json (train with evaluate_after_fit=true)."
    lines = ["| metric | value | protocol |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt(v)} | {(metric_protocol(metrics, k) or '-').replace('|', chr(92) + '|')} |"
              for k, v in rows]  # protocols hold "|": escaped, or markdown splits the cell
    lines += ["", f"(the run's metrics.json, evaluated on its {metrics.get('checkpoint', '?')} checkpoint at "
              f"step {metrics.get('step', '?')}; all values in metrics.json)"]
    return "\n".join(lines)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def model_card(config: dict, metrics: dict, command: str | None) -> str:
    """README.md: what it is, what it was trained on, its numbers with their protocol, a
    sample grid, how to use it and the commands that made it."""
    arch, data = config["architecture"], config["trained_on"]
    header = yaml.safe_dump({"library_name": "t2i", "pipeline_tag": "text-to-image" if config["text"] else
                             "unconditional-image-generation", "tags": ["gan", arch, data["name"] or "t2i"]},
                            sort_keys=False)
    lines = [f"---\n{header}---", f"# {arch} on {data['name']} ({config['image_size']}x{config['image_size']})", "",
             f"A {config['model_class']} generator exported from a t2i run ({config['checkpoint']}, "
             f"step {config['step']}, seed {config['seed']}){', EMA weights' if config['ema'] else ''}.",
             f"Trained on: {data['name']} ({data['dataset']}, images at {data['image_size']} px).", ""]
    lines += ["## Metrics", "", metrics_markdown(metrics), ""]
    examples = config.get("examples") or []
    call = f"g({json.dumps(examples[:4])}, n=8, seed=0)" if config["text"] else "g(n=8, seed=0)"
    lines += ["## Samples", "", f"![samples]({SAMPLES})", "", f"`{call}`, one row per caption.", "",
              "## Use", "", "```python", "import t2i", 'g = t2i.load_generator("THIS_FOLDER")',
              f"images = {call}  # PIL images", "```", "",
              "or `python generate.py model=THIS_FOLDER text=\"...\"`, `python demo.py model=THIS_FOLDER`.", ""]
    if command:
        lines += ["## Made with", "", "```", command, "```", ""]
    return "\n".join(lines)
