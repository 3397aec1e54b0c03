"""Atomic writes, used for every file the project writes (checkpoints, caches,
metrics.json, pictures): write a temporary file in the destination's own folder, then
os.replace it over the destination. A kill or a full disk mid-write leaves the old file
(or none), never a torn one. A full disk is one line naming the folder and the bytes
needed (DiskFullError), checked before large writes where the size is known. Also:
caches that fail to load are moved aside, not fatal."""
from __future__ import annotations

import errno
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from t2i.errors import T2IError

log = logging.getLogger("t2i")


class DiskFullError(T2IError, OSError):
    """Not enough free space in a folder for a write (checked first, or ENOSPC from it)."""

    def __init__(self, folder: Path, needed: int, what: str):
        free = _free(folder)
        super().__init__(errno.ENOSPC, f"no space left in {folder}: {what} needs about {human_bytes(needed)} "
                                       f"({needed} bytes), {human_bytes(free)} free there. Free some space or point "
                                       f"the run elsewhere (hydra.run.dir=..., paths.cache_dir=...)")

    def __str__(self) -> str:  # the message alone, not OSError's "[Errno 28] ..."
        return str(self.strerror)


def _free(folder: Path) -> int:
    while not folder.exists() and folder != folder.parent:  # a folder not made yet: its disk
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def human_bytes(n: float, base: int = 1024) -> str:
    """A byte count for a message: 950 B, 1.5 KB, 13.5 GB; `base` 1000 for download sizes, as
    the sources publish them."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < base or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= base
    return f"{n:.1f} GB"


def check_space(folder: str | Path, needed: int, what: str) -> None:
    """Refuse (DiskFullError) before writing `needed` bytes into `folder` when it has less
    free: a memory-mapped file on a full disk dies of SIGBUS, not an exception."""
    folder = Path(folder)
    if _free(folder) < needed:
        raise DiskFullError(folder, needed, what)


@contextmanager
def no_space_as_error(folder: str | Path, needed: int, what: str) -> Iterator[None]:
    """Around a write: ENOSPC (or EDQUOT, a full quota) becomes DiskFullError's one line."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) or isinstance(error, DiskFullError):
            raise
        raise DiskFullError(Path(folder), needed, what) from None


def tensor_bytes(obj: Any) -> int:
    """The bytes of the tensors in nested dicts / lists (a checkpoint's size, near enough)."""
    if isinstance(obj, torch.Tensor):
        return obj.nelement() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


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
    """torch.save, atomically and fsynced (checkpoints and cached networks). Refused with
    one line when the disk fills during the write (the old file stays). No check before:
    the write itself is the test, and a filesystem that misreports its free space (some
    network mounts) must not stop a run."""
    path = Path(path)
    needed = tensor_bytes(obj) + 64 * 1024  # + the pickled rest (config, loop state)
    with atomic_path(path, fsync=True) as tmp, no_space_as_error(path.parent, needed, f"saving {path.name}"):
        # through a Python file: torch's own writer turns ENOSPC into "[enforce fail at
        # inline_container.cc]", which says nothing of the disk
        with open(tmp, "wb") as f:
            torch.save(obj, f)


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
