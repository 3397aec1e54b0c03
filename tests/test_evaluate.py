"""evaluate.py: checkpoint -> metrics.json with honest labels, samples.png."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from t2i.run import evaluate, train
from tests.fixtures import write_fixture

ROOT = Path(__file__).resolve().parents[1]
TINY = ["experiment=shapes_dcgan", "data.splits=[256,64,128]", "data.image_size=32", "model.ngf=16", "model.ndf=16",
        "trainer.enable_progress_bar=false", "trainer.max_steps=2"]


@pytest.fixture
def shapes_ckpt(make_cfg, tmp_path):
    train(make_cfg(TINY))
    return tmp_path / "run" / "checkpoints" / "last.ckpt"


def test_evaluate_writes_domain_metrics(shapes_ckpt, make_cfg, tmp_path):
    cfg = make_cfg([f"ckpt_path={shapes_ckpt}", "eval.num_samples=100", "eval.kid_subset_size=50",
                    "eval.feature_extractor=domain"], name="evaluate", out=tmp_path / "eval")
    metrics = evaluate(cfg)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "num_samples", "fid_feature_extractor"):
        assert key in saved
    assert saved["fid_feature_extractor"] == "domain:shapes"  # never passed off as Inception
    assert saved["is_mean"] is None and "Inception" in saved["is_note"]
    assert saved["num_samples"] == 100 and saved["fid"] > 0
    assert (tmp_path / "eval" / "samples.png").stat().st_size > 0


def test_evaluate_missing_inception_file_is_an_error(shapes_ckpt, make_cfg, tmp_path):
    cfg = make_cfg([f"ckpt_path={shapes_ckpt}", "eval.inception_weights=/no/such/weights.pth"],
                   name="evaluate", out=tmp_path / "eval")
    with pytest.raises(FileNotFoundError, match="inception_weights"):
        evaluate(cfg)


def test_evaluate_can_point_at_moved_data(make_cfg, tmp_path):
    """data.root on the evaluate command line replaces the stored one."""
    overrides = write_fixture("mnist", tmp_path / "mnist")
    train(make_cfg(["experiment=mnist_dcgan", "model.ngf=8", "model.ndf=8", "trainer.max_steps=1",
                    "trainer.enable_progress_bar=false", *overrides], out=tmp_path / "run"))
    moved = tmp_path / "moved"
    (tmp_path / "mnist").rename(moved)
    cfg = make_cfg([f"ckpt_path={tmp_path / 'run/checkpoints/last.ckpt'}", f"data.root={moved}",
                    "eval.num_samples=50", "eval.kid_subset_size=20", "eval.feature_extractor=domain"],
                   name="evaluate", out=tmp_path / "eval")
    assert evaluate(cfg)["fid_feature_extractor"] == "domain:mnist"


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_missing_checkpoint(tmp_path):
    out = run_cli("evaluate.py", "ckpt_path=/no/such.ckpt", f"hydra.run.dir={tmp_path}")
    assert out.returncode != 0 and "no such checkpoint" in out.stderr


@pytest.mark.slow  # a whole train.py start-up; the message itself is tested in-process in test_vision
def test_cli_missing_dataset_fails_fast_with_fix(tmp_path):
    out = run_cli("train.py", "experiment=mnist_dcgan", f"data.root={tmp_path / 'none'}",
                  f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode != 0
    assert "train-images-idx3-ubyte" in out.stderr and "data.root" in out.stderr


def test_cli_bad_config_value(tmp_path):
    out = run_cli("train.py", "model.d_steps=0", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode != 0 and "d_steps must be >= 1" in out.stderr
