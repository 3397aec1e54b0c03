"""Atomic writes, used for every file the project writes (checkpoints, caches,
metrics.json, pictures): write a temporary file in the destination's own folder, then
os.replace it over the destination. A kill or a full disk mid-write leaves the old file
(or none), never a torn one. Also: caches that fail to load are moved aside, not fatal."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

log = logging.getLogger("t2i")


@contextmanager
def atomic_path(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same folder, so os.replace is a rename, not a
    copy across filesystems; same suffix, so writers that infer the format from it work).
    On success it replaces `path`; on any error it is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:  # the rename itself reaches the disk with the folder's entry
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save, atomically and fsynced (checkpoints and cached networks)."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


def load_cache(path: str | Path, load: Callable[[Path], Any]) -> Any | None:
    """`load(path)`, or None when the cache file is absent or cannot be read: a torn or
    corrupt one is named, moved aside to <file>.corrupt and left to be rebuilt."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as error:  # what a torn file raises depends on the format and where it was cut
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning("cache %s could not be read (%s: %s): moved to %s, rebuilding it", path,
                    type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "", aside.name)
        return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, atomic in the checkpoint's own folder (Lightning's
    default writes through $TMPDIR, which on a cluster with a local /tmp and outputs on
    NFS/Lustre turns the final move into a copy that a kill can leave torn)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint takes no storage_options, got {storage_options}")
        atomic_save(checkpoint, path)
