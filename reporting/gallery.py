"""report.py --html: one static page (images embedded), the sortable metrics table (the
metric table's headline metrics, each cell titled with its protocol), then per run its
pictures and training curves."""
from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path

from reporting.figures import curve_keys, last_sample, plot_curves
from reporting.runs import Run, discover_runs, load_run, short_names
from reporting.tables import _fmt
from t2i.evaluation.metric_table import HEADLINE, metric_protocol

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
