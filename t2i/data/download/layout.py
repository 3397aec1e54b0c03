"""The layout step: a verified file's contents put where the readers look (the README's
dataset table), through a staging folder beside them so that a failure half-way leaves
the dataset folder as it was. Members are read one by one (not `extractall`) to drop
Mac OS junk (`__MACOSX/`, `._*`), keep only what the readers use (Reed's tarballs also
hold ~1 GB of Torch features) and refuse paths that would land outside the folder."""
from __future__ import annotations

import fnmatch
import gzip
import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Iterator

from t2i.data.download.fetch import SourceFailed, hashes, verify_checksum
from t2i.data.download.sources import FileSpec, Unpack

STAGING = ".staging-"


def is_junk(parts: tuple[str, ...]) -> bool:
    return any(p == "__MACOSX" or p.startswith("._") or p == ".DS_Store" for p in parts)


def archive_members(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """(member path, opened member) of every regular file of a tar (any compression) or zip."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    with z.open(info) as f:
                        yield info.filename, f
        return
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile():
                    with tar.extractfile(member) as f:
                        yield member.name, f
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SourceFailed(f"not a readable tar or zip archive ({err})", content=True) from None


def member_names(path: Path) -> list[str]:
    return [name for name, _ in archive_members(path)]


def check_contents(path: Path, spec: FileSpec) -> None:
    """A file with no published checksum must at least hold the members the readers need."""
    if not spec.contains:
        return
    names = member_names(path)
    missing = [p for p in spec.contains if not any(fnmatch.fnmatch(n, p) for n in names)]
    if missing:
        raise SourceFailed(f"not the expected archive: no member matches {', '.join(missing)} "
                           f"({len(names)} members)", content=True)


def verify(path: Path, spec: FileSpec) -> dict[str, str]:
    """The published checksum where there is one, else the size (when known) and the
    members; returns the file's md5 and sha256."""
    if spec.md5 or spec.sha256:
        return verify_checksum(path, spec)
    if spec.size is not None and path.stat().st_size != spec.size:
        raise SourceFailed(f"wrong size: {path.stat().st_size} bytes, expected {spec.size}", content=True)
    check_contents(path, spec)
    return hashes(path)


def target(name: str, rule: Unpack) -> PurePosixPath | None:
    """Where a member goes under the dataset folder, or None when it is not kept."""
    parts = PurePosixPath(name).parts
    if not parts or parts[0] in ("/", "..") or ".." in parts:
        raise SourceFailed(f"archive member {name!r} points outside the dataset folder", content=True)
    if is_junk(parts) or len(parts) <= rule.strip:
        return None
    rel = PurePosixPath(*parts[rule.strip:])
    if rule.keep and not any(fnmatch.fnmatch(str(rel), k) for k in rule.keep):
        return None
    return PurePosixPath(rule.into) / rel if rule.into else rel


def stage(path: Path, spec: FileSpec, staging: Path) -> int:
    """Writes what `spec.unpack` keeps of `path` under `staging`; the number of files."""
    rule = spec.unpack
    if rule.how in ("copy", "gunzip"):
        name = spec.name[:-3] if rule.how == "gunzip" else spec.name
        out = staging / rule.into / name
        out.parent.mkdir(parents=True, exist_ok=True)
        with (gzip.open(path) if rule.how == "gunzip" else open(path, "rb")) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return 1
    count = 0
    for name, f in archive_members(path):
        rel = target(name, rule)
        if rel is None:
            continue
        out = staging / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as dst:
            shutil.copyfileobj(f, dst)
        count += 1
    if count == 0:
        raise SourceFailed(f"the archive holds nothing the readers use (kept: {', '.join(rule.keep) or 'all'})",
                           content=True)
    return count


def merge(src: Path, dst: Path) -> None:
    """Moves src's entries into dst by rename (same filesystem), folder by folder, so files
    already there (a partial download) are replaced and others kept."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        into = dst / entry.name
        if entry.is_dir() and into.is_dir():
            merge(entry, into)
        else:
            if into.is_dir():
                shutil.rmtree(into)
            os.replace(entry, into)


def lay_out(path: Path, spec: FileSpec, root: Path, work: Path) -> int:
    """Stages `path`'s kept contents in `work`, then moves them into `root`."""
    staging = work / f"{STAGING}{spec.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        count = stage(path, spec, staging)
        merge(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count
