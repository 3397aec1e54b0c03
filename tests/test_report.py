"""report.py on run folders laid out as train.py writes them (CSVLogger's sparse
csv/metrics.csv, Hydra's .hydra/overrides.yaml, metrics.json, samples/step_*.png)."""
from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from report import build_report, direction, discover_runs, last_sample, load_run, main, short_names, summarise, xy
from t2i.run import train


def write_run(run_dir: Path, overrides: list[str] | None, val_losses: list[float], step_losses: list[float],
              results: dict | None = None, sample_steps: tuple[int, ...] = ()) -> Path:
    """A run folder: one val/loss row per epoch, train/loss rows per 10 steps, the way
    Lightning's CSVLogger writes them (one column per metric, empty where not logged)."""
    (run_dir / "csv").mkdir(parents=True)
    rows = []
    for i, loss in enumerate(step_losses):
        rows.append({"epoch": i // 2, "step": 10 * i + 9, "train/loss": loss})
    for epoch, loss in enumerate(val_losses):
        rows.append({"epoch": epoch, "step": 20 * epoch + 19, "val/loss": loss})
    rows.sort(key=lambda r: r["step"])
    with open(run_dir / "csv" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "step", "train/loss", "val/loss"])
        writer.writeheader()
        writer.writerows(rows)
    if overrides is not None:
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if results is not None:
        (run_dir / "metrics.json").write_text(json.dumps(results))
    for step in sample_steps:
        (run_dir / "samples").mkdir(exist_ok=True)
        shade = np.full((20, 30), step % 256, dtype=np.uint8)
        Image.fromarray(shade).save(run_dir / "samples" / f"step_{step:06d}.png")
    return run_dir


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "sweep"
    note = "a long explanatory note that is far too long to sit in a table cell"
    for job, (features, fill) in enumerate([(2, "outline"), (4, "outline"), (2, "filled"), (4, "filled")]):
        base = 0.1 * features + (0.2 if fill == "outline" else 0.0)
        write_run(root / str(job), ["experiment=shapes_gnn", f"data.num_features={features}", f"data.fill={fill}"],
                  val_losses=[base + 0.3, base, base + 0.05], step_losses=[1.0, 0.5, 0.4, 0.45, 0.3, 0.35],
                  results={"test_mse": base / 2, "fid_feature_extractor": "domain:shapes", "is_note": note,
                           "is_mean": None}, sample_steps=(5, 20, 100))
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def table_rows(report: Path) -> dict[str, list[str]]:
    """report.md's main table as {run label: cells}, with the header under 'run'."""
    rows = {}
    for line in report.read_text().split("## ")[0].splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def test_discovers_runs_in_natural_order(tmp_path):
    for job in (0, 2, 10, 1):
        write_run(tmp_path / "sweep" / str(job), [f"seed={job}"], [1.0], [1.0])
    write_run(tmp_path / "single", None, [1.0], [1.0])
    (tmp_path / "sweep" / "not_a_run").mkdir()
    runs = discover_runs([tmp_path / "sweep", tmp_path / "single"])
    assert [p.name for p in runs] == ["single", "0", "1", "2", "10"]  # ".../single" < ".../sweep/0"
    assert [p.name for p in discover_runs([tmp_path / "sweep"])] == ["0", "1", "2", "10"]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        discover_runs([tmp_path / "absent"])


def test_reference_values_have_no_best(tmp_path):
    """A shuffled floor (or real ceiling, or baseline fill) beside a score is no score: its
    highest value is not the model's best, so the table gives it none."""
    assert direction("val/alignment_accuracy") == "max" and direction("val/fid") == "min"
    for key in ("val/alignment_accuracy_shuffled", "alignment_accuracy_shuffled/shape", "val/r_precision_shuffled",
                "val/r_precision_real", "alignment_accuracy_real/size", "psnr_centre_baseline"):
        assert direction(key) is None, key
    run_dir = tmp_path / "run"
    (run_dir / "csv").mkdir(parents=True)
    rows = [{"step": 9, "val/alignment_accuracy": 0.5, "val/alignment_accuracy_shuffled": 0.45},
            {"step": 19, "val/alignment_accuracy": 0.4, "val/alignment_accuracy_shuffled": 0.40}]
    with open(run_dir / "csv" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["step", "val/alignment_accuracy", "val/alignment_accuracy_shuffled"])
        writer.writeheader()
        writer.writerows(rows)
    row = summarise(load_run(run_dir))
    assert row["val/alignment_accuracy"] == "0.4 (best 0.5)"
    assert row["val/alignment_accuracy_shuffled"] == "0.4"


def test_names_are_the_overrides_that_differ(sweep, tmp_path):
    runs = [load_run(p) for p in discover_runs([sweep])]
    labels, common = short_names(runs)
    assert common == ["experiment=shapes_gnn"]
    assert labels[0] == "data.num_features=2 data.fill=outline"
    assert len(set(labels)) == 4
    # no overrides file: the folder name
    lone = load_run(write_run(tmp_path / "my_run", None, [1.0], [1.0]))
    assert short_names([lone])[0] == ["my_run"]


def test_table_has_final_best_and_metrics_json(sweep, tmp_path):
    report = build_report([sweep], tmp_path / "out")
    assert report == tmp_path / "out" / "report.md"
    rows = table_rows(report)
    header = rows.pop("run")
    assert header[:2] == ["train/loss", "val/loss"]
    cells = dict(zip(header, rows["data.num_features=4 data.fill=filled"]))
    # val/loss went 0.7, 0.4, 0.45: final 0.45, best 0.4; train/loss ended at 0.35, best 0.3
    assert cells["val/loss"] == "0.45 (best 0.4)"
    assert cells["train/loss"] == "0.35 (best 0.3)"
    assert cells["test_mse"] == "0.2"
    assert cells["fid_feature_extractor"] == "domain:shapes"
    assert "is_note" not in header and "is_mean" not in header  # long notes and nulls stay out
    assert "experiment=shapes_gnn" in report.read_text()  # the shared overrides are stated
    assert (tmp_path / "out" / "report_curves.png").exists()
    assert not (tmp_path / "out" / "report_samples.png").exists()


def test_grouped_means_answer_a_sweeps_questions(sweep, tmp_path):
    report = build_report([sweep], tmp_path / "out", by=["data.num_features"])
    section = report.read_text().split("## By data.num_features")[1]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    by_value = {cells[0]: dict(zip(header, cells)) for cells in
                ([c.strip() for c in line.strip("|").split(" | ")] for line in lines[1:])}
    # test_mse = (0.1 * features + 0.2 [outline] or 0) / 2, averaged over the two fills
    assert float(by_value["2"]["test_mse"]) == pytest.approx((0.2 + 0.4) / 4, rel=1e-3)
    assert float(by_value["4"]["test_mse"]) == pytest.approx((0.4 + 0.6) / 4, rel=1e-3)
    assert by_value["4"]["runs"] == "2"


def test_curves_use_epochs_for_epoch_metrics_and_steps_otherwise(sweep):
    run = load_run(sweep / "0")
    x, y, axis = xy(run.series["val/loss"])
    assert axis == "epoch" and x == [0, 1, 2]
    x, y, axis = xy(run.series["train/loss"])
    assert axis == "step" and x == [9, 19, 29, 39, 49, 59]


def test_samples_figure_shows_each_runs_last_grid(sweep, tmp_path):
    assert last_sample(sweep / "0").name == "step_000100.png"  # not step_000020 (string order)
    build_report([sweep], tmp_path / "out", samples=True)
    figure = Image.open(tmp_path / "out" / "report_samples.png")
    assert figure.size[0] > figure.size[1]  # four grids side by side


def test_cli_defaults_to_the_first_dir_and_accepts_globs(sweep, capsys):
    main([str(sweep), "--curves", "val/*", "--samples"])
    assert Path(capsys.readouterr().out.strip()) == sweep / "report.md"
    assert (sweep / "report_curves.png").exists() and (sweep / "report_samples.png").exists()


def test_no_runs_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="csv/metrics.csv"):
        build_report([tmp_path / "empty"])


@pytest.fixture
def one_thread():
    """Tiny convolutions run far faster on one thread than on threads fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_report_of_real_training_runs(make_cfg, tmp_path, one_thread):
    """Two real (tiny) runs written by train.py's loggers and callbacks."""

    for width in (4, 8):
        out = tmp_path / "runs" / f"w{width}"
        cfg = make_cfg(["experiment=shapes_gnn", "data.splits=[64,32,32]", "data.batch_size=32",
                        "trainer.max_epochs=2", f"model.width={width}", "trainer.enable_progress_bar=false"], out=out)
        train(cfg)
        (out / ".hydra").mkdir(exist_ok=True)
        (out / ".hydra" / "overrides.yaml").write_text(f"- experiment=shapes_gnn\n- model.width={width}\n")
    report = build_report([tmp_path / "runs"], tmp_path / "report", samples=True)
    rows = table_rows(report)
    header = rows.pop("run")
    assert set(rows) == {"model.width=4", "model.width=8"}
    assert {"train/loss", "val/loss", "val_mse", "test_mse"} <= set(header)
    for cells in rows.values():
        assert all(cells[header.index(k)] for k in ("val/loss", "test_mse"))
    assert (tmp_path / "report" / "report_samples.png").exists()


def test_columns_pick_a_model_comparison(tmp_path):
    """--columns keeps the named columns (globs too) in order, with the model's class
    from .hydra/config.yaml and the last logged step: a GAN-CLS vs DF-GAN table without the
    train/* curves."""
    for name, target, accuracy in (("a", "t2i.tasks.text_to_image.GANCLS", 0.98), ("b", "t2i.tasks.df_gan.DFGAN", 0.9)):
        run = write_run(tmp_path / "runs" / name, [f"experiment=shapes_{name}"], [1.0, 0.5], [1.0, 0.8, 0.6],
                        results={"alignment_accuracy": accuracy, "alignment_accuracy_shuffled": 0.44,
                                 "alignment_accuracy/shape": accuracy - 0.05, "fid": 20.0,
                                 "fid_feature_extractor": "domain:shapes"})
        (run / ".hydra" / "config.yaml").write_text(f"model:\n  _target_: {target}\nseed: 0\n")
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
          "--columns", "model", "last_step", "alignment_accuracy*", "fid*", "absent"])
    rows = table_rows(tmp_path / "out" / "report.md")
    assert rows.pop("run") == ["model", "last_step", "alignment_accuracy", "alignment_accuracy_shuffled",
                               "alignment_accuracy/shape", "fid", "fid_feature_extractor"]
    assert rows["experiment=shapes_a"][:3] == ["GANCLS", "39", "0.98"]
    assert rows["experiment=shapes_b"][0] == "DFGAN" and rows["experiment=shapes_b"][-2:] == ["20", "domain:shapes"]
    # without --columns the table is unchanged: every logged metric, no pseudo-columns
    rows = table_rows(build_report([tmp_path / "runs"], tmp_path / "all"))
    assert "model" not in rows["run"] and "train/loss" in rows["run"]


# ------------------------------------------------------------------ HTML gallery
def write_gallery_runs(root: Path, n: int = 3) -> Path:
    """A 3-run sweep as train.py leaves it: metrics.json with protocols, the pictures."""
    for job in range(n):
        fid = 30.0 - 7 * job
        run = write_run(root / str(job), ["experiment=shapes_t2i", f"seed={job}"], val_losses=[0.5, 0.4],
                        step_losses=[1.0, 0.8, 0.6, 0.5],
                        results={"fid": fid, "precision": 0.1 * job, "fid_protocol": f"domain:shapes | run {job}",
                                 "r_precision": 0.2 + job / 10, "r_precision_protocol": "matching evaluator | 1+99",
                                 "checkpoint": "best", "step": 100 * job})
        for name in ("captions.png", "samples.png", "interpolation.png"):
            Image.fromarray(np.full((12, 16 + job), 40 * job, dtype=np.uint8)).save(run / name)
    return root


def test_html_gallery_is_one_standalone_page_with_protocols(tmp_path):

    root = write_gallery_runs(tmp_path / "sweep")
    main([str(root), "--html", str(tmp_path / "page.html")])
    page = (tmp_path / "page.html").read_text()
    table = page.split("<tbody>")[1].split("</tbody>")[0]
    assert table.count("<tr>") == 3
    # every number carries its protocol (precision shares FID's), sortable by its value
    assert 'data-value="16.0" title="domain:shapes | run 2">16</td>' in table
    assert 'data-value="0.2" title="domain:shapes | run 2">' in table
    assert 'title="matching evaluator | 1+99"' in table
    assert "<script>" in page and "sortable" in page
    # pictures embedded (no file next to the page needed): 3 pictures + curves per run, all decodable PNGs
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 3 * 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    for s in sources:
        Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).verify()
    assert page.count("<figcaption>training curves</figcaption>") == 3
