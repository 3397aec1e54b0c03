"""Fetching one file over HTTP(S), so that nothing half-done passes for done.

torchvision's `download_url` writes straight to the final name, cannot resume, takes a
Google Drive quota page for the file and retries https as http on any error, so the
transfer itself is a small urllib loop here: bytes go to `<name>.part`, an interrupted
transfer resumes with an HTTP Range request (or restarts when the server ignores it), an
HTML page is refused at its first bytes, and only a file that passed its checks is
renamed to its final name. md5 and sha256 are computed in one pass (torchvision's
`calculate_md5` would read a 13 GB archive twice)."""
from __future__ import annotations

import hashlib
import http.client
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from torch.utils.model_zoo import tqdm  # the bar torchvision's downloads draw: bytes and rate

from t2i.atomic_files import atomic_write_text
from t2i.data.download.sources import FileSpec

CHUNK = 1 << 20
TIMEOUT_S = 30       # seconds without a byte before a try counts as cut
TRIES = 4            # per source: the first request and its resumes
USER_AGENT = "t2i-download (pytorch/vision compatible)"


class SourceFailed(Exception):
    """One source could not give the file. `content`: it answered with the wrong thing
    (checksum, size, HTML page, archive members), so a partial file from it is dropped."""

    def __init__(self, reason: str, content: bool = False):
        super().__init__(reason)
        self.reason, self.content = reason, content


SpaceCheck = Callable[[int], None]  # called with the bytes still to come; raises when they do not fit


def source_urls(spec: FileSpec, mirror: str | None) -> list[str]:
    """The mirror first (base URL + file name), then the canonical sources in order."""
    urls = [mirror.rstrip("/") + "/" + spec.name] if mirror else []
    return urls + list(spec.urls)


def _request(url: str, offset: int) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.Request(url, headers=headers)


def looks_like_html(first: bytes, content_type: str) -> bool:
    head = first.lstrip()[:64].lower()
    return "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


def _open(url: str, offset: int):
    """The response, resuming at `offset` where the server agrees; (response, offset)."""
    try:
        response = urllib.request.urlopen(_request(url, offset), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the range starts past the end: the part is done or foreign
            return None, offset
        raise SourceFailed(f"HTTP {err.code} {err.reason}") from None
    if offset and response.status != 206:
        offset = 0  # the server ignored the Range header: start over
    return response, offset


def _total(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _copy(response, part: Path, offset: int, spec: FileSpec, check_space: SpaceCheck) -> bool:
    """Appends the response to `part`; True when the whole body arrived."""
    total = _total(response, offset)
    if spec.size is not None and total is not None and total != spec.size:
        raise SourceFailed(f"wrong size: the server offers {total} bytes, expected {spec.size}", content=True)
    if total is not None:
        check_space(total - offset)
    first = response.read(CHUNK)
    if offset == 0 and looks_like_html(first, response.headers.get("Content-Type", "")):
        raise SourceFailed("got an HTML page instead of the file (Google Drive's quota or virus-scan page, "
                           "a login or an error page)", content=True)
    with open(part, "ab" if offset else "wb") as f, \
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=spec.name,
                 miniters=1, mininterval=1.0) as bar:
        chunk = first
        while chunk:
            f.write(chunk)
            bar.update(len(chunk))
            chunk = response.read(CHUNK)
    return total is None or part.stat().st_size >= total


def transfer(url: str, part: Path, spec: FileSpec, check_space: SpaceCheck) -> None:
    """Fetches `url` into `part`, resuming after a cut up to TRIES times."""
    last = ""
    for _ in range(TRIES):
        offset = part.stat().st_size if part.exists() else 0
        try:
            response, offset = _open(url, offset)
            if response is None:
                return  # 416: the checks decide whether the part is the file
            with response:
                if _copy(response, part, offset, spec, check_space):
                    return
            last = "the connection closed before the end"
        except SourceFailed:
            raise
        except (socket.timeout, TimeoutError) as err:
            last = f"timed out ({err or f'no byte for {TIMEOUT_S} s'})"
        except (http.client.IncompleteRead, ConnectionError) as err:
            last = f"connection cut ({type(err).__name__})"
        except urllib.error.URLError as err:
            if isinstance(err.reason, (socket.timeout, TimeoutError)):
                last = "timed out"
                continue
            raise SourceFailed(f"unreachable ({err.reason})") from None
    kept = part.stat().st_size if part.exists() else 0
    raise SourceFailed(f"{last} after {TRIES} tries ({kept} bytes kept in {part.name}: rerun to resume)")


def hashes(path: Path) -> dict[str, str]:
    """md5 and sha256 in one pass over the file."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def verify_checksum(path: Path, spec: FileSpec) -> dict[str, str]:
    """Size, then the published checksums; returns the file's hashes."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise SourceFailed(f"wrong size: {size} bytes, expected {spec.size}", content=True)
    found = hashes(path)
    for kind in ("sha256", "md5"):
        expected = getattr(spec, kind)
        if expected and found[kind] != expected:
            raise SourceFailed(f"checksum mismatch ({kind} {found[kind]}, expected {expected}): a corrupt "
                               "copy or another version of the file", content=True)
    return found


def write_sha256(path: Path, sha256: str) -> Path:
    """`<file>.sha256` in sha256sum's format (`sha256sum -c` checks it), written atomically."""
    out = path.with_name(path.name + ".sha256")
    atomic_write_text(out, f"{sha256}  {path.name}\n")
    return out
