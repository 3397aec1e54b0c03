"""report.py's runs: finding run folders (any folder holding csv/metrics.csv), reading
each one's logged series, metrics.json values, overrides and model, and naming them."""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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
def natural_key(path: Path) -> list:
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
    return sorted(found, key=natural_key)


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
