"""Checkpoints are read without running code (issue 38): a malicious pickle is refused by
every entry point, one line, exit 2, and runs nothing; the project's own checkpoints,
today's and those written the old way, load without any flag; trust_checkpoint=true is
the explicit way to load a foreign one."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from t2i.data.synthetic.shapes import ShapesDataModule
from t2i.errors import CheckpointError
from t2i.evaluation.domain import train_domain_classifier
from t2i.generate import generate_from_checkpoint
from t2i.pretrained import export
from t2i.run import evaluate, load_checkpoint, train
from t2i.safe_load import UnsafeCheckpointError, load_torch
from tests.faults_common import TINY, malicious_checkpoint, run_cli, step

ENTRY_POINTS = {
    "evaluate.py": lambda ckpt, out: ["evaluate.py", f"ckpt_path={ckpt}", f"hydra.run.dir={out}"],
    "train.py": lambda ckpt, out: ["train.py", *TINY, f"ckpt_path={ckpt}", f"hydra.run.dir={out}"],
    "generate.py": lambda ckpt, out: ["generate.py", f"ckpt_path={ckpt}", "text=a circle", f"hydra.run.dir={out}"],
    "export.py": lambda ckpt, out: ["export.py", f"ckpt_path={ckpt}", f"out={out}"],
}


@pytest.mark.parametrize("script", [pytest.param(s, marks=[pytest.mark.slow] if s == "train.py" else [])
                                    for s in ENTRY_POINTS])
def test_a_malicious_checkpoint_runs_nothing_in_any_entry_point(tmp_path, script):
    marker = tmp_path / "pwned"
    ckpt = malicious_checkpoint(tmp_path / "e.ckpt", marker)
    out = run_cli(*ENTRY_POINTS[script](ckpt, tmp_path / "out"))
    assert not marker.exists()
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr[-2000:]
    assert "needs posix.system" in out.stderr and "trust_checkpoint=true" in out.stderr
    assert not (tmp_path / "out").exists()  # a refused command writes nothing


def test_a_malicious_checkpoint_is_refused_in_process(make_cfg, tmp_path):
    marker = tmp_path / "pwned"
    ckpt = malicious_checkpoint(tmp_path / "e.ckpt", marker)
    calls = [lambda: train(make_cfg(TINY + [f"ckpt_path={ckpt}"])),
             lambda: evaluate(make_cfg([f"ckpt_path={ckpt}"], name="evaluate", out=tmp_path / "eval")),
             lambda: generate_from_checkpoint(make_cfg([f"ckpt_path={ckpt}", "text=a"], name="generate",
                                                       out=tmp_path / "gen")),
             lambda: export(ckpt, tmp_path / "exported")]
    for call in calls:
        with pytest.raises(UnsafeCheckpointError, match="needs posix.system") as error:
            call()
        assert "\n" not in str(error.value)
    assert not marker.exists() and not (tmp_path / "exported").exists()


def test_trust_checkpoint_is_the_explicit_opt_in(tmp_path):
    marker = tmp_path / "pwned"
    malicious_checkpoint(tmp_path / "e.ckpt", marker)
    load_torch(tmp_path / "e.ckpt", trust=True)
    assert marker.exists()  # the flag does what it says: a full unpickle, code and all


def _old_style(finished_run: Path, tmp_path: Path, extra=None) -> Path:
    """The finished run's folder with its last.ckpt rewritten as older code could write it:
    the config as a DictConfig and a DictConfig / ListConfig model setting in hyper_parameters."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ckpt["t2i_config"] = OmegaConf.create(ckpt["t2i_config"])
    ckpt["hyper_parameters"]["betas"] = OmegaConf.create({"g": [0.5, 0.999]})
    ckpt["hyper_parameters"]["sizes"] = OmegaConf.create([1, 2])
    if extra is not None:
        ckpt["hyper_parameters"]["namespace"] = extra
    torch.save(ckpt, path)
    return path


def test_old_checkpoints_of_this_project_load_without_a_flag(finished_run, make_cfg, tmp_path):
    path = _old_style(finished_run, tmp_path)
    model, _, cfg = load_checkpoint(str(path))
    assert cfg.model.ngf == 8 and type(model).__name__ == "DCGAN"
    metrics = evaluate(make_cfg([f"ckpt_path={path}", "eval.num_samples=16", "eval.kid_subset_size=8",
                                 "device=cpu"], name="evaluate", out=tmp_path / "eval"))
    assert metrics["step"] == 2
    train(make_cfg(TINY + ["trainer.max_steps=3", "ckpt_path=last"]))  # Lightning's resume reads it too
    assert step(path) == 3


def test_a_foreign_type_is_named_and_loads_with_trust(finished_run, make_cfg, tmp_path):
    path = _old_style(finished_run, tmp_path, extra=argparse.Namespace(lr=0.1))
    with pytest.raises(CheckpointError, match="needs argparse.Namespace") as error:
        train(make_cfg(TINY + ["trainer.max_steps=3", "ckpt_path=last"]))
    assert "trust_checkpoint=true" in str(error.value)
    assert step(path) == 2  # untouched
    train(make_cfg(TINY + ["trainer.max_steps=3", "ckpt_path=last", "trust_checkpoint=true"]))
    assert step(path) == 3


def test_a_malicious_evaluation_cache_runs_nothing_and_is_rebuilt(tmp_path):
    """The evaluation caches (domain classifier, matching judge, reference features) are read
    like checkpoints: a cache file that would run code is moved aside and rebuilt."""
    datamodule = ShapesDataModule(image_size=32, splits=(256, 64, 64), batch_size=32)
    _, accuracy = train_domain_classifier(datamodule, tmp_path / "cache", epochs=1)
    cached = next((tmp_path / "cache" / "domain").glob("*.pt"))
    marker = tmp_path / "marker"
    malicious_checkpoint(cached, marker)
    _, again = train_domain_classifier(datamodule, tmp_path / "cache", epochs=1)
    assert not marker.exists()
    assert set(again) == set(accuracy)  # rebuilt: a classifier with every head
    assert cached.with_name(cached.name + ".corrupt").exists()
    assert "state_dict" in load_torch(cached)  # and the new cache is plain data
