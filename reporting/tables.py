"""report.py's markdown tables: one row per run (final and best values, with the
direction of the metric table), column picking, and a sweep's grouped means."""
from __future__ import annotations

import fnmatch

from reporting.runs import Run
from t2i.evaluation.metric_table import direction


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
