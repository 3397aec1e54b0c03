"""One dataset, fetched and laid out: the files its table entry names (those still missing),
each from the mirror or its canonical sources in order, checked, renamed into
`ROOT/downloads/` and unpacked where the reader looks. A file already laid out (its
`downloads/<file>.done` marker, or the paths it would produce) is not fetched again."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from t2i.atomic_files import atomic_write_text
from t2i.atomic_files import human_bytes as _human_bytes
from t2i.data.download.fetch import SourceFailed, source_urls, transfer, write_sha256
from t2i.data.download.layout import check_contents, lay_out, verify
from t2i.data.download.sources import DATASETS, DatasetSpec, FileSpec
from t2i.errors import T2IError

log = logging.getLogger("t2i")
PARTS = ("all", "images", "captions")
Say = Callable[[str], None]


def human_bytes(n: float) -> str:
    return _human_bytes(n, base=1000)  # sizes as the sources publish them


class DownloadError(T2IError):
    """A dataset file that could not be fetched or checked: names it, the sources tried and what to do."""


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if spec.manual:
        raise DownloadError(spec.manual)
    return spec


def default_root(spec: DatasetSpec) -> Path:
    """Where conf/data/<name>.yaml looks by default: $T2I_DATA (or ./data) / folder."""
    base = Path(os.environ.get("T2I_DATA", "data")).expanduser()
    return base / spec.folder if spec.folder else base


def selected(spec: DatasetSpec, part: str) -> list[FileSpec]:
    if part not in PARTS:
        raise DownloadError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    return [f for f in spec.files if part == "all" or f.part in (part, "all")]


def marker(work: Path, f: FileSpec) -> Path:
    return work / f"{f.name}.done"


def laid_out(f: FileSpec, root: Path, work: Path) -> bool:
    return marker(work, f).exists() or (bool(f.present) and all((root / p).exists() for p in f.present))


def existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class SpaceCheck:
    """Free space against the bytes still to download plus the unpacked files."""

    def __init__(self, root: Path, name: str):
        self.root, self.name = root, name

    def __call__(self, download: int, unpacked: int = 0, say: Say | None = None) -> None:
        free = shutil.disk_usage(existing(self.root)).free
        need = download + unpacked
        if say is not None:
            say(f"{self.name}: {human_bytes(download)} to download, about {human_bytes(need)} needed with the "
                f"unpacked files; {human_bytes(free)} free under {existing(self.root)}")
        if need > free:
            raise DownloadError(f"{self.name}: not enough disk space under {self.root}: about {human_bytes(need)} "
                                f"needed ({human_bytes(download)} to download + {human_bytes(unpacked)} unpacked), "
                                f"{human_bytes(free)} free. Free some space or choose another --root (data.root=)")


def needed(files: list[FileSpec], work: Path) -> tuple[int, int]:
    """(bytes still to download, bytes once unpacked) over `files` (unknown sizes count 0)."""
    download = unpacked = 0
    for f in files:
        part = work / f"{f.name}.part"
        if not (work / f.name).exists():
            download += max(0, (f.size or 0) - (part.stat().st_size if part.exists() else 0))
        unpacked += f.unpacked or f.size or 0
    return download, unpacked


def advice(f: FileSpec, failures: list[tuple[str, SourceFailed]], work: Path) -> str:
    by_hand = (f"or download {f.urls[0] if f.urls else f.name} by hand (in a browser for Google Drive) to "
               f"{work / f.name} and rerun: it is checked and unpacked from there")
    if any(e.content for _, e in failures):
        return f"the copy offered is not the expected file: fix or drop that source (--mirror), {by_hand}"
    return f"check the connection or the mirror's address, {by_hand}"


def fetch_file(f: FileSpec, work: Path, mirror: str | None, space: SpaceCheck, say: Say) -> Path:
    """The verified file at `work/<name>`, from the first source that gives it."""
    final, part, failures = work / f.name, work / f"{f.name}.part", []
    unpacked = f.unpacked or f.size or 0
    for url in source_urls(f, mirror):
        try:
            work.mkdir(parents=True, exist_ok=True)
            say(f"{f.name}: fetching {url}")
            transfer(url, part, f, lambda n: space(n, unpacked))
            digests = verify(part, f)
        except SourceFailed as err:
            failures.append((url, err))
            if err.content:  # never resume a wrong file
                part.unlink(missing_ok=True)
            continue
        os.replace(part, final)
        sums = write_sha256(final, digests["sha256"])
        if not (f.md5 or f.sha256):
            say(f"{f.name}: no published checksum; size and contents checked; sha256 {digests['sha256']} "
                f"(written to {sums})")
        return final
    tried = "; ".join(f"{url}: {err.reason}" for url, err in failures)
    raise DownloadError(f"{f.name}: not fetched. Tried {tried}. What to do: {advice(f, failures, work)}")


def get_file(f: FileSpec, root: Path, work: Path, mirror: str | None, space: SpaceCheck, say: Say) -> None:
    final = work / f.name
    if final.exists():  # placed by hand or left by an earlier run: checked again before use
        try:
            verify(final, f)
            say(f"{f.name}: using {final}")
        except SourceFailed as err:
            say(f"{f.name}: {final} fails its check ({err.reason}): fetching it again")
            final.unlink()
    if not final.exists():
        fetch_file(f, work, mirror, space, say)
    count = lay_out(final, f, root, work)
    atomic_write_text(marker(work, f), f"{count} files unpacked into {root}\n")
    say(f"{f.name}: {count} files in place under {root}")


def tidy(paths: list[Path]) -> None:
    """Removes the folders this run created that stayed empty (a refused download leaves nothing)."""
    for path in paths:
        try:
            path.rmdir()
        except OSError:
            pass


def fetch_dataset(name: str, root: str | Path | None = None, mirror: str | None = None, part: str = "all",
                  say: Say = log.info) -> Path:
    """Fetches, checks and lays out dataset `name` under `root`; returns root."""
    spec = dataset_spec(name)
    root = Path(root).expanduser() if root is not None else default_root(spec)
    work = root / "downloads"
    files = selected(spec, part)
    todo = [f for f in files if not laid_out(f, root, work)]
    for f in files:
        if f not in todo:
            say(f"{f.name}: already in place under {root} (delete {marker(work, f)} to fetch it again)")
    if not todo:
        return root
    say(f"{name}: terms: {spec.terms}")
    space = SpaceCheck(root, name)
    space(*needed(todo, work), say=say)
    created = [p for p in (work, *work.parents) if not p.exists()]
    try:
        for f in todo:
            get_file(f, root, work, mirror, space, say)
    finally:
        tidy(created)
    return root


def unpack_local(name: str, paths: list[str | Path], root: str | Path | None = None, say: Say = log.info) -> Path:
    """Lays out archives you already have (a lab's copy, a subset you built): matched to the
    table by file name, checked by their members, not by checksum (a subset would fail it)."""
    spec = dataset_spec(name)
    root = Path(root).expanduser() if root is not None else default_root(spec)
    by_name = {f.name: f for f in spec.files}
    for path in map(Path, paths):
        f = by_name.get(path.name)
        if f is None:
            raise DownloadError(f"{path}: not a file of {name}; its files are {', '.join(by_name)}")
        if not path.is_file():
            raise DownloadError(f"{path}: no such file")
        try:
            check_contents(path, f)
            root.mkdir(parents=True, exist_ok=True)
            count = lay_out(path, f, root, root)
        except SourceFailed as err:
            raise DownloadError(f"{path}: {err.reason}; rebuild it as {f.name} holds it") from None
        say(f"{path.name}: {count} files in place under {root} (your copy: checksum not checked)")
    return root
