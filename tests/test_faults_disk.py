"""Issue 38, full disks: one line naming the folder and the bytes needed, never a
"[enforce fail at inline_container.cc]" or a SIGBUS; the old file stays and no scratch
file is left behind, whichever way the write ends."""
from __future__ import annotations

import errno
import shutil
from collections import namedtuple

import pytest
import torch

from t2i import atomic_files as t2i_io
from t2i.atomic_files import AtomicCheckpointIO, DiskFullError
from t2i.data import cache as cache_mod
from t2i.data.cache import cached_images
from t2i.errors import user_errors
from t2i.run import train
from tests.conftest import compose_config
from tests.faults_common import TINY
from tests.test_cache import write_images

Usage = namedtuple("Usage", "total used free")


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def half_written(obj, f):
    f.write(b"PK\x03\x04 the first bytes")
    full_disk()


def test_checkpoint_save_on_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(10)}, "global_step": 1}, path)
    before = path.read_bytes()
    monkeypatch.setattr(t2i_io.torch, "save", half_written)
    with pytest.raises(DiskFullError) as error:
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 2}, path)
    message = str(error.value)
    assert "\n" not in message and str(path.parent) in message and "saving last.ckpt" in message
    assert f"({4000 + 64 * 1024} bytes)" in message and "free there" in message
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_a_run_whose_disk_fills_ends_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    cfg = compose_config("train", [f"paths.cache_dir={tmp_path / 'cache'}", *TINY, "trainer.max_steps=2",
                                   "eval.every_n_steps=0"], tmp_path / "run")
    monkeypatch.setattr(t2i_io.torch, "save", half_written)
    with pytest.raises(SystemExit) as exit_, user_errors():
        train(cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err[-1].startswith("error: no space left in ") and "last.ckpt" in err[-1]
    assert not [p for p in (tmp_path / "run").rglob("*") if ".tmp-" in p.name]


def test_cache_build_refused_before_writing_when_space_is_short(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img")
    monkeypatch.setattr(t2i_io.shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DiskFullError) as error:
        cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    folder = tmp_path / "cache" / "images"
    needed = 2 * len(paths) * 3 * 16 * 16 + 64 * 1024
    assert f"no space left in {folder}: building the image cache" in str(error.value)
    assert f"({needed} bytes), 1000 B free there" in str(error.value)
    assert list(folder.iterdir()) == []  # nothing memory-mapped, nothing written


@pytest.mark.parametrize("stage", ["_fill", "_write"])
def test_a_disk_that_fills_during_the_cache_build_leaves_no_scratch(tmp_path, monkeypatch, stage):
    paths = write_images(tmp_path / "img")
    monkeypatch.setattr(cache_mod, stage, full_disk)
    with pytest.raises(DiskFullError, match="building the image cache"):
        cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert list((tmp_path / "cache" / "images").iterdir()) == []
    monkeypatch.undo()
    images, kept = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)  # space again: built
    assert len(kept) == len(paths)


def test_other_write_errors_pass_through(tmp_path, monkeypatch):
    def denied(obj, f):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(t2i_io.torch, "save", denied)
    with pytest.raises(PermissionError) as error:
        t2i_io.atomic_save({"x": 1}, tmp_path / "x.pt")
    assert not isinstance(error.value, DiskFullError) and list(tmp_path.iterdir()) == []
    assert shutil.disk_usage(tmp_path).free > 0  # the real one, untouched by the tests above
