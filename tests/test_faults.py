"""Fault injection: what a user sees when things go wrong on purpose (two runs into one
folder, SIGTERM / Ctrl-C mid-run, torn checkpoints and caches, a full disk, bad values for
every checked setting), and that nothing written before is lost."""
from __future__ import annotations

import errno
import io
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf, open_dict

from t2i import atomic_files as t2i_io
from t2i.atomic_files import AtomicCheckpointIO, atomic_save, atomic_write_text, load_cache
from t2i.data.cache import cached_images
from t2i.errors import CheckpointError, ConfigError, RunFolderError
from t2i.evaluation.settings import EvalSettings, MatchingSettings
from t2i.generate import image_names
from t2i.run import train
from t2i.run_folder import LOCK, RunFolder
from t2i.text.word2vec import train_word2vec
from t2i.value_checks import INTEGERS, check_config
from tests.faults_common import ROOT, TINY
from tests.faults_common import step as _step
from tests.test_cache import write_images


# ------------------------------------------------------------------ the run folder
def _lock_held_by(run: Path, pid: int) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / LOCK).write_text(yaml.safe_dump({"pid": pid, "host": socket.gethostname(), "started": "earlier"}))


def test_a_second_run_into_a_folder_in_use_is_refused(make_cfg, tmp_path):
    run = tmp_path / "run"
    _lock_held_by(run, os.getppid())  # a live process that is not this one
    (run / "train.log").write_text("the first run's log\n")
    with pytest.raises(RunFolderError, match=rf"in use by another run \(pid {os.getppid()} on") as error:
        train(make_cfg(TINY + ["trainer.max_steps=1"]))
    assert "hydra.run.dir=" in str(error.value) and "wait" in str(error.value)
    assert (run / "train.log").read_text() == "the first run's log\n"
    assert yaml.safe_load((run / LOCK).read_text())["pid"] == os.getppid()  # still the first run's
    assert not (run / "checkpoints").exists() and not (run / ".hydra").exists()


def test_a_stale_lock_is_taken_over_with_a_log_line(tmp_path, caplog):
    gone = subprocess.Popen(["true"])
    gone.wait()
    _lock_held_by(tmp_path, gone.pid)
    with caplog.at_level(logging.WARNING, logger="t2i"), RunFolder(tmp_path) as folder:
        assert yaml.safe_load(folder.lock.read_text())["pid"] == os.getpid()
    assert f"taking over the lock of run pid {gone.pid}" in caplog.text
    assert not (tmp_path / LOCK).exists()  # released at the end


def test_rerun_is_refused_and_resume_or_overwrite_say_so(finished_run, make_cfg, tmp_path, caplog):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(finished_run), str(run)], check=True)
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(RunFolderError, match="already holds a run") as error:
        train(make_cfg(TINY + ["trainer.max_steps=1"]))
    assert "ckpt_path=last" in str(error.value) and "overwrite=true" in str(error.value)
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before  # the first run is intact

    train(make_cfg(TINY + ["trainer.max_steps=3", "ckpt_path=last"]))
    assert _step(run / "checkpoints" / "last.ckpt") == 3
    assert sorted(p.name for p in (run / "checkpoints").glob("last*")) == ["last.ckpt"]  # no last-v1.ckpt
    assert (run / ".hydra" / "config.yaml").exists() and not (run / LOCK).exists()

    with caplog.at_level(logging.WARNING, logger="t2i"):
        train(make_cfg(TINY + ["trainer.max_steps=1", "overwrite=true"]))
    assert "overwrite=true: starting over" in caplog.text
    assert _step(run / "checkpoints" / "last.ckpt") == 1


def test_ckpt_path_last_without_a_run_is_an_error(make_cfg, tmp_path):
    with pytest.raises(RunFolderError, match="no run to resume"):
        train(make_cfg(TINY + ["ckpt_path=last"]))
    assert not (tmp_path / "run" / "checkpoints").exists()


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("kind", ["text", "empty", "torn", "pickle"])
def test_a_file_that_is_not_a_checkpoint_is_named_before_any_work(finished_run, make_cfg, tmp_path, kind):
    bad = tmp_path / f"{kind}.ckpt"
    real = (finished_run / "checkpoints" / "last.ckpt").read_bytes()
    content = {"text": b"hello, I am notes\n", "empty": b"", "torn": real[: len(real) // 3], "pickle": None}[kind]
    if content is None:
        torch.save({"weights": torch.zeros(2)}, bad)
    else:
        bad.write_bytes(content)
    expected = {"text": "text", "empty": "0 bytes", "torn": "torn", "pickle": "no state_dict"}[kind]
    with pytest.raises(CheckpointError, match=str(bad)) as error:
        train(make_cfg(TINY + [f"ckpt_path={bad}"]))
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_checkpoint_of_another_model_is_one_line(finished_run, make_cfg):
    ckpt = finished_run / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="holds a DCGAN checkpoint but this config builds a ExplodingDCGAN"):
        train(make_cfg(TINY + [f"ckpt_path={ckpt}", "model._target_=tests.test_dcgan.ExplodingDCGAN"]))
    with pytest.raises(CheckpointError, match=r"do not fit .*model.ngf=8 there, 16 here"):
        train(make_cfg([*TINY, f"ckpt_path={ckpt}", "model.ngf=16"]))


# ------------------------------------------------------------------ atomic writes
def _enospc_after_half(real):
    """A writer (to a path or an open file) that writes half its bytes, then finds the disk full."""
    def write(obj, target, *args, **kwargs):
        buffer = io.BytesIO()
        real(obj, buffer, *args, **kwargs)
        half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if hasattr(target, "write"):
            target.write(half)
        else:
            Path(target).write_bytes(half)
        raise OSError(errno.ENOSPC, "No space left on device")
    return write


def test_a_full_disk_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 5}, path)
    monkeypatch.setattr(t2i_io.torch, "save", _enospc_after_half(torch.save))
    with pytest.raises(OSError, match="no space left in .*checkpoints: saving last.ckpt needs about"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 6}, path)
    monkeypatch.undo()
    assert _step(path) == 5 and os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left behind


def test_a_full_disk_leaves_the_old_metrics_intact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, '{"fid": 1.0}')
    real = Path.write_text

    def full(self, text, *args, **kwargs):
        real(self, text[:3])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError):
        atomic_write_text(path, '{"fid": 2.0}')
    monkeypatch.undo()
    assert path.read_text() == '{"fid": 1.0}' and os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "cache.pt"
    atomic_save({"old": True}, path)
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom t2i.atomic_files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    with open(tmp, 'wb') as f:\n"
        "        for _ in range(1000):\n"
        "            f.write(b'x' * 1000); f.flush(); time.sleep(0.01)\n"), str(path)], cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and not [p for p in tmp_path.iterdir() if p.name != "cache.pt"]:
        time.sleep(0.05)
    time.sleep(0.2)
    child.kill()
    child.wait()
    assert torch.load(path, weights_only=False) == {"old": True}


def test_a_torn_cache_is_named_moved_aside_and_rebuilt(tmp_path, caplog):
    corpus = [["a", "red", "circle"], ["a", "blue", "square"]] * 5
    first = train_word2vec(corpus, dim=8, epochs=1, cache_dir=tmp_path)
    (path,) = (tmp_path / "word2vec").glob("*.kv")
    path.write_bytes(path.read_bytes()[:40])  # torn
    with caplog.at_level(logging.WARNING, logger="t2i"):
        again = train_word2vec(corpus, dim=8, epochs=1, cache_dir=tmp_path)
    assert f"cache {path} could not be read" in caplog.text and path.name + ".corrupt" in caplog.text
    assert (path.parent / (path.name + ".corrupt")).exists()
    assert np.allclose(first["circle"], again["circle"])  # rebuilt (same corpus and seed) ...
    assert train_word2vec(corpus, dim=8, epochs=1, cache_dir=tmp_path).vector_size == 8  # ... and readable


def test_a_torn_image_cache_is_rebuilt(tmp_path, caplog):
    paths = write_images(tmp_path / "img")
    images = np.array(cached_images(paths, 16, tmp_path / "cache", "val", workers=1)[0])  # a copy, not the memmap
    (array,) = [p for p in (tmp_path / "cache" / "images").glob("*.npy") if ".kept" not in p.name]
    array.write_bytes(array.read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="t2i"):
        again, kept = cached_images(paths, 16, tmp_path / "cache", "val", workers=1)
    assert "could not be read" in caplog.text and np.array_equal(images, again) and len(kept) == 5


def test_load_cache_names_the_file(tmp_path, caplog):
    path = tmp_path / "x.pt"
    path.write_bytes(b"PK\x03\x04 cut")
    with caplog.at_level(logging.WARNING, logger="t2i"):
        assert load_cache(path, lambda p: torch.load(p, weights_only=False)) is None
    assert str(path) in caplog.text and not path.exists() and (tmp_path / "x.pt.corrupt").exists()


def test_unreadable_images_are_named(tmp_path, caplog):
    paths = write_images(tmp_path / "img")
    bad = []
    for i in range(7):
        bad.append(tmp_path / "img" / f"bad{i}.jpg")
        bad[-1].write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="t2i"):
        _, kept = cached_images(paths + bad, 16, tmp_path / "cache", "val", workers=1)
    assert len(kept) == 5
    assert "bad0.jpg" in caplog.text and "bad4.jpg" in caplog.text and "bad5.jpg" not in caplog.text
    assert "and 2 more" in caplog.text


# ------------------------------------------------------------------ settings
def _bad_values(lowest: int) -> list:
    return ["abc", lowest - 1, 2.5, True]


@pytest.mark.parametrize("key", [k for k in INTEGERS if k != "n"])
def test_every_checked_setting_is_named_with_value_and_what_is_allowed(make_cfg, key):
    cfg = make_cfg(TINY)
    check_config(cfg)  # the defaults pass
    lowest, allowed = INTEGERS[key]
    for value in _bad_values(lowest):
        _assert_refused(cfg, key, value, allowed)


def _assert_refused(cfg, key: str, value, allowed: str) -> None:
    """Setting `key` to `value` makes check_config refuse it in one line naming both."""
    with open_dict(cfg):
        parent, _, leaf = key.rpartition(".")
        OmegaConf.select(cfg, parent)[leaf] = value
    with pytest.raises(ConfigError) as error:
        check_config(cfg)
    assert str(error.value) == f"{key}={value!r} is not allowed: {allowed}"


def _eval_integers() -> list[tuple[str, str]]:
    out = []
    for where, cls in (("eval", EvalSettings), ("eval.matching", MatchingSettings)):
        out += [(f"{where}.{f.name}", f.metadata["allowed"]) for f in fields(cls)
                if f.metadata.get("allowed", "").startswith("an integer")]
    return out


@pytest.mark.parametrize("key, allowed", _eval_integers())
def test_every_eval_integer_is_named_with_value_and_what_is_allowed(make_cfg, key, allowed):
    """eval.* are checked by their owner (EvalSettings), through the same check_config."""
    cfg = make_cfg(TINY)
    for value in ["abc", -1, 2.5, True]:
        _assert_refused(cfg, key, value, allowed)


def test_reference_split_and_generate_n_are_checked(make_cfg):
    cfg = make_cfg(TINY + ["eval.reference_split=val"])
    with pytest.raises(ConfigError, match="eval.reference_split='val' is not allowed: one of train, test"):
        check_config(cfg)
    with pytest.raises(ConfigError, match="n=0 is not allowed"):
        check_config(make_cfg(["ckpt_path=x.ckpt", "text=a", "n=0"], name="generate"))


def test_a_bad_setting_fails_before_any_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="trainer.max_steps='abc'"):
        train(make_cfg(TINY + ["trainer.max_steps=abc"]))
    assert not (tmp_path / "run").exists()  # not even the run folder


@pytest.mark.slow  # a train.py start (tests/test_evaluate.py's CLI error test is the fast one)
def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    out = subprocess.run([sys.executable, "train.py", "eval.num_samples=0", f"hydra.run.dir={tmp_path / 'run'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: eval.num_samples=0 is not allowed: an integer >= 1 (generated images scored)"
    assert not (tmp_path / "run").exists()  # not even the folder and log file Hydra made for it


# ------------------------------------------------------------------ generate.py
def test_generate_names_never_collide(tmp_path):
    long = "a " + "very " * 20
    texts = [long + "red flower", long + "blue flower", "123", "!!!", "123"]
    names = image_names(texts, 2, tmp_path)
    assert len(set(names)) == len(texts)
    (tmp_path / f"{names[0]}_0.png").write_bytes(b"an earlier call's image")
    assert image_names(texts[:1], 2, tmp_path) == [names[0] + "-2"]  # never over an existing file


# ------------------------------------------------------------------ signals
def _start(run: Path, cache: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "train.py", *TINY, "trainer.log_every_n_steps=1", f"hydra.run.dir={run}",
           f"paths.cache_dir={cache}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_steps(proc: subprocess.Popen, run: Path, rows: int = 3) -> None:
    metrics = run / "csv" / "metrics.csv"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") > rows):
        time.sleep(0.3)
        assert proc.poll() is None, proc.stdout.read()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_exits_non_zero_and_the_printed_command_resumes(tmp_path, sig, code):
    run = tmp_path / "run"
    proc = _start(run, tmp_path / "cache", "trainer.max_steps=100000")
    _wait_for_steps(proc, run)
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == code, out[-3000:]
    stopped_at = _step(run / "checkpoints" / "last.ckpt")
    assert stopped_at > 0
    line = next(x for x in out.splitlines() if "Resume: python train.py" in x)
    command = line.split("Resume: ", 1)[1]
    assert f"hydra.run.dir={run}" in command and "ckpt_path=last" in command
    args = [a.replace("trainer.max_steps=100000", f"trainer.max_steps={stopped_at + 3}")
            for a in shlex.split(command)[2:]]
    done = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _step(run / "checkpoints" / "last.ckpt") == stopped_at + 3
    assert sorted(p.name for p in (run / "checkpoints").glob("last*")) == ["last.ckpt"]


@pytest.mark.slow
def test_two_runs_into_one_folder(tmp_path):
    run = tmp_path / "run"
    first = _start(run, tmp_path / "cache", "trainer.max_steps=100000", "seed=1")
    _wait_for_steps(first, run)
    second = subprocess.run([sys.executable, "train.py", *TINY, "seed=2", f"hydra.run.dir={run}",
                             f"paths.cache_dir={tmp_path / 'cache'}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 2 and f"pid {first.pid}" in second.stderr, second.stderr[-2000:]
    assert "seed: 1" in (run / ".hydra" / "config.yaml").read_text()  # the first run's record
    os.kill(first.pid, signal.SIGTERM)
    first.communicate(timeout=180)
    assert first.returncode == 143
