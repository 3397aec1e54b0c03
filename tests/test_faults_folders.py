"""A refused command changes nothing (issue 38): checks run before the run's record
(.hydra/) is written; evaluate.py, generate.py and export.py refuse a folder in use; an
empty lock left by a crash is taken over with a log line."""
from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import yaml

from t2i.errors import CheckpointError, RunFolderError
from t2i.generate import generate_from_checkpoint
from t2i.pretrained import export
from t2i.run import evaluate, train
from t2i.run_folder import LOCK, RunFolder
from tests.faults_common import TINY


def _snapshot(run: Path) -> dict:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and (p.parts[-2] == ".hydra" or p.name == "metrics.json")}


def _copy(finished_run: Path, run: Path) -> Path:
    shutil.copytree(finished_run, run)
    (run / "metrics.json").write_text('{"fid": 1.0, "checkpoint": "last"}')
    return run


def test_a_refused_resume_leaves_the_record_unchanged(finished_run, make_cfg, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    before = _snapshot(run)
    assert ".hydra/config.yaml" in before
    with pytest.raises(CheckpointError, match="do not fit"):
        train(make_cfg(TINY + ["ckpt_path=last", "model.ngf=16", "seed=7"]))
    assert _snapshot(run) == before and not (run / LOCK).exists()


def _held(run: Path) -> None:
    (run / LOCK).write_text(yaml.safe_dump({"pid": os.getppid(), "host": socket.gethostname(), "started": "now"}))


def test_evaluate_generate_and_export_refuse_a_folder_in_use(finished_run, make_cfg, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    _held(run)
    before = _snapshot(run)
    ckpt = run / "checkpoints" / "last.ckpt"
    with pytest.raises(RunFolderError, match="in use by another run"):
        evaluate(make_cfg([f"ckpt_path={ckpt}"], name="evaluate", out=run))
    with pytest.raises(RunFolderError, match="in use by another run"):
        generate_from_checkpoint(make_cfg([f"ckpt_path={tmp_path / 'none.ckpt'}", "text=a"], name="generate",
                                          out=run), generator=_FakeGenerator())
    out = tmp_path / "exported"
    out.mkdir()
    _held(out)
    with pytest.raises(RunFolderError, match="in use by another run"):
        export(ckpt, out)
    assert _snapshot(run) == before and os.listdir(out) == [LOCK]


class _FakeGenerator:
    """generate.py model=DIR without a trained text-to-image model: one grey image per caption."""
    conditional = True

    model = torch.nn.Identity()

    def generate(self, texts, n, seed=0):
        return torch.zeros(len(texts), n, 3, 8, 8)


def test_evaluate_into_a_finished_runs_folder_keeps_its_record(finished_run, make_cfg, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    record = _snapshot(run)
    evaluate(make_cfg([f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "eval.num_samples=16",
                       "eval.kid_subset_size=8", "device=cpu"], name="evaluate", out=run))
    assert {k: v for k, v in _snapshot(run).items() if k.startswith(".hydra/")} == \
        {k: v for k, v in record.items() if k.startswith(".hydra/")}
    assert "task_name: evaluate" in (run / ".hydra-evaluate" / "config.yaml").read_text()


@pytest.mark.parametrize("content", ["", "pid: [\n", "just text"])
def test_an_empty_or_torn_lock_is_taken_over_with_a_log_line(tmp_path, caplog, content):
    (tmp_path / LOCK).write_text(content)
    with caplog.at_level(logging.WARNING, logger="t2i"), RunFolder(tmp_path) as folder:
        assert yaml.safe_load(folder.lock.read_text())["pid"] == os.getpid()
    assert "names no run" in caplog.text and not (tmp_path / LOCK).exists()
