"""t2i.data.download without the internet: a local HTTP server on 127.0.0.1 serves small
archives built here in the real formats (a CUB-like tgz, Reed-like caption tarballs,
Flickr8k-like zips), with checksums computed when they are built and put in the source
table in place of the real ones."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import tarfile
import threading
import time
import zipfile
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from t2i.data.cub import CUBCaptions
from t2i.data.download import fetch
from t2i.data.download.__main__ import main
from t2i.data.download.sources import DATASETS
from t2i.data.flickr import FlickrCaptions
from t2i.data.flowers import FlowersCaptions
from tests.fixtures import cub as cub_fx
from tests.fixtures import flickr as flickr_fx
from tests.fixtures import flowers as flowers_fx

HTML = b"<!DOCTYPE html><html><body>Google Drive - Quota exceeded</body></html>"


# ------------------------------------------------------------------ the local server
class State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.html: set[str] = set()
        self.cuts: dict[str, int] = {}    # path -> how many more responses stop half-way
        self.slow: set[str] = set()       # paths that answer after the client's timeout
        self.log: list[tuple[str, str | None]] = []


class Handler(BaseHTTPRequestHandler):
    timeout = 5  # a stuck client cannot hold a handler thread for long

    def log_message(self, *args):
        pass

    def do_GET(self):
        state: State = self.server.state
        state.log.append((self.path, self.headers.get("Range")))
        if self.path in state.slow:
            time.sleep(1.0)
            return
        if self.path in state.html:
            return self._send(200, HTML, {"Content-Type": "text/html; charset=utf-8"})
        body = state.files.get(self.path)
        if body is None:
            return self.send_error(404)
        start = int(self.headers["Range"][6:].rstrip("-")) if self.headers.get("Range") else 0
        headers = {"Content-Type": "application/octet-stream"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        payload, length = body[start:], len(body) - start
        if state.cuts.get(self.path, 0) > 0:  # promise everything, send half, hang up
            state.cuts[self.path] -= 1
            payload = payload[: length // 2]
        self._send(206 if start else 200, payload, headers, length)

    def _send(self, code: int, payload: bytes, headers: dict, length: int | None = None):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload) if length is None else length))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    """A server that lives for one test (and stops itself after 60 s whatever happens)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    guard = threading.Timer(60, httpd.shutdown)
    guard.daemon = True
    guard.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    guard.cancel()
    httpd.shutdown()
    httpd.server_close()


# ------------------------------------------------------------------ archives in the real formats
def tar_of(folder: Path, mode: str = "w:gz", extra: dict[str, bytes] | None = None) -> bytes:
    """Every file under `folder`, named relative to it, plus `extra` members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, str(path.relative_to(folder)))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def cub_archives(tmp: Path, classes: int | None = None) -> dict[str, bytes]:
    """CUB_200_2011.tgz (CUB_200_2011/ + the real one's stray attributes.txt) and Reed's
    cvpr2016_cub.tar.gz (cvpr2016_cub/{text_c10/, *classes.txt, Torch features})."""
    caltech, reed = tmp / "caltech", tmp / "reed" / "cvpr2016_cub"
    cub_fx.write_caltech(caltech / "CUB_200_2011")
    if classes is not None:  # a partial copy: the images of the first `classes` classes only
        for folder in sorted((caltech / "CUB_200_2011" / "images").iterdir())[classes:]:
            shutil.rmtree(folder)
    cub_fx.write_captions(reed / "text_c10")
    cub_fx.write_class_lists(reed)
    return {"CUB_200_2011.tgz": tar_of(caltech, extra={"attributes.txt": b"1 has_bill_shape::curved\n"}),
            "cvpr2016_cub.tar.gz": tar_of(reed.parent, extra={"cvpr2016_cub/images/001.t7": bytes(64)})}


def flowers_archives(tmp: Path) -> dict[str, bytes]:
    flowers_fx.write(tmp / "flowers")
    (tmp / "jpg").mkdir()
    shutil.move(str(tmp / "flowers" / "jpg"), str(tmp / "jpg" / "jpg"))
    reed = tmp / "reed" / "cvpr2016_flowers"
    shutil.move(str(tmp / "flowers" / "text_c10"), str(reed / "text_c10"))
    return {"102flowers.tgz": tar_of(tmp / "jpg"), "imagelabels.mat": b"MATLAB 5.0 labels",
            "setid.mat": b"MATLAB 5.0 setid", "cvpr2016_flowers.tar.gz": tar_of(reed.parent)}


def flickr_archives(tmp: Path) -> dict[str, bytes]:
    """The official zips: Flicker8k_Dataset/ (typo kept) and the text files at the zip's top,
    both with the __MACOSX/ junk the real ones carry."""
    flickr_fx.write(tmp / "flickr")
    images = tmp / "images"
    shutil.move(str(tmp / "flickr" / "Flicker8k_Dataset"), str(images / "Flicker8k_Dataset"))
    junk = {"__MACOSX/._Flickr8k.token.txt": b"\x00\x05\x16\x07junk"}
    return {"Flickr8k_Dataset.zip": zip_of(images, junk), "Flickr8k_text.zip": zip_of(tmp / "flickr" / "Flickr8k_text",
                                                                                     junk)}


def serve(monkeypatch, server, name: str, archives: dict[str, bytes], sources=("canonical",)) -> None:
    """Puts the archives on the server and the table entry of `name` on them: their own
    size and md5 where the real entry has a checksum, none where it has none (Reed's)."""
    spec = DATASETS[name]
    files = []
    for f in spec.files:
        data = archives[f.name]
        for where in sources:
            server.state.files[f"/{where}/{f.name}"] = data
        published = f.md5 or f.sha256
        files.append(dataclasses.replace(
            f, urls=tuple(f"{server.url}/{where}/{f.name}" for where in sources), size=len(data) if published else None,
            md5=hashlib.md5(data).hexdigest() if published else None, sha256=None))
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, files=tuple(files)))


Run = namedtuple("Run", "code out err")


def run(args: list[str], capsys) -> Run:
    try:
        code = main(args)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return Run(code, out, err)


def error_line(result: Run) -> str:
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert result.code == 2 and len(lines) == 1, result
    assert "Traceback" not in result.err
    return lines[0]


# ------------------------------------------------------------------ cases
def test_cub_end_to_end_then_the_reader_loads_it(server, monkeypatch, tmp_path, capsys):
    archives = cub_archives(tmp_path / "build")
    serve(monkeypatch, server, "cub", archives)
    root = tmp_path / "cub"
    result = run(["cub", "--root", str(root)], capsys)
    assert result.code == 0, result
    assert (root / "CUB_200_2011" / "images.txt").is_file() and (root / "trainvalclasses.txt").is_file()
    assert (root / "text_c10" / "001.Red_Cardinal").is_dir()
    assert not (root / "attributes.txt").exists() and not (root / "images").exists()  # only what the reader uses
    sha = hashlib.sha256(archives["cvpr2016_cub.tar.gz"]).hexdigest()
    assert (root / "downloads" / "cvpr2016_cub.tar.gz.sha256").read_text() == f"{sha}  cvpr2016_cub.tar.gz\n"
    assert sha in result.out and "no published checksum" in result.out
    assert not list((root / "downloads").glob("*.part")) and not list(root.glob(".staging-*"))
    dm = CUBCaptions(root=str(root), cache_dir=str(tmp_path / "cache"), cache_workers=1)
    splits = dm.load_splits()
    assert len(splits["test"].captions) == 10 and dm.stats["images_missing"] == cub_fx.PER_CLASS + 1


def test_flickr8k_zips_end_to_end_macos_junk_dropped(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "flickr8k", flickr_archives(tmp_path / "build"))
    root = tmp_path / "flickr"
    assert run(["flickr8k", "--root", str(root)], capsys).code == 0
    assert (root / "Flickr8k_text" / "Flickr8k.token.txt").is_file() and not (root / "__MACOSX").exists()
    assert not list(root.rglob("._*"))
    dm = FlickrCaptions(root=str(root), cache_dir=str(tmp_path / "cache"), cache_workers=1)
    assert len(dm.load_splits()["train"].captions) == flickr_fx.SPLIT_SIZES["train"]  # the corrupt one skipped


def test_resume_after_a_cut_connection(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "cub", cub_archives(tmp_path / "build"))
    server.state.cuts["/canonical/CUB_200_2011.tgz"] = 1
    root = tmp_path / "cub"
    assert run(["cub", "--root", str(root), "--images-only"], capsys).code == 0
    requests = [r for r in server.state.log if r[0] == "/canonical/CUB_200_2011.tgz"]
    size = len(server.state.files["/canonical/CUB_200_2011.tgz"])
    assert requests == [("/canonical/CUB_200_2011.tgz", None), ("/canonical/CUB_200_2011.tgz", f"bytes={size // 2}-")]
    assert (root / "CUB_200_2011" / "images.txt").is_file()
    assert not (root / "text_c10").exists()  # --images-only


def test_checksum_mismatch_from_the_mirror_is_refused_and_leaves_nothing(server, monkeypatch, tmp_path, capsys):
    archives = cub_archives(tmp_path / "build")
    serve(monkeypatch, server, "cub", archives)
    good = archives["CUB_200_2011.tgz"]
    server.state.files["/mirror/CUB_200_2011.tgz"] = good[:100] + bytes(len(good) - 100)  # right size, corrupt
    del server.state.files["/canonical/CUB_200_2011.tgz"]
    root = tmp_path / "cub"
    line = error_line(run(["cub", "--root", str(root), "--mirror", f"{server.url}/mirror"], capsys))
    assert "CUB_200_2011.tgz" in line and f"{server.url}/mirror/CUB_200_2011.tgz: checksum mismatch" in line
    assert "HTTP 404" in line and "What to do:" in line
    assert not root.exists()


def test_wrongly_sized_copy_is_refused_before_its_bytes(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "cub", cub_archives(tmp_path / "build"))
    server.state.files["/canonical/CUB_200_2011.tgz"] += b"extra"
    line = error_line(run(["cub", "--root", str(tmp_path / "cub")], capsys))
    assert "wrong size" in line and not (tmp_path / "cub").exists()


def test_html_page_instead_of_the_archive(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "flowers", flowers_archives(tmp_path / "build"))
    server.state.html.add("/canonical/cvpr2016_flowers.tar.gz")  # Drive's quota page
    root = tmp_path / "flowers"
    line = error_line(run(["flowers", "--root", str(root), "--captions-only"], capsys))
    assert "cvpr2016_flowers.tar.gz" in line and "HTML page instead of the file" in line
    assert "in a browser" in line and not root.exists()


def test_404_then_the_next_source(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "flowers", flowers_archives(tmp_path / "build"), sources=("gone", "canonical"))
    for path in [p for p in server.state.files if p.startswith("/gone/")]:
        del server.state.files[path]
    root = tmp_path / "flowers"
    assert run(["flowers", "--root", str(root), "--mirror", f"{server.url}/no-such-mirror"], capsys).code == 0
    asked = [p for p, _ in server.state.log if p.endswith("102flowers.tgz")]
    assert asked == ["/no-such-mirror/102flowers.tgz", "/gone/102flowers.tgz", "/canonical/102flowers.tgz"]
    dm = FlowersCaptions(root=str(root), cache_dir=str(tmp_path / "cache"), cache_workers=1)
    assert dm.load_splits()["train"].captions and (root / "setid.mat").is_file()


def test_not_enough_disk_space(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "cub", cub_archives(tmp_path / "build"))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))
    root = tmp_path / "cub"
    line = error_line(run(["cub", "--root", str(root)], capsys))
    assert "not enough disk space" in line and "1.0 KB free" in line
    assert server.state.log == [] and not root.exists()


def test_a_second_run_downloads_nothing(server, monkeypatch, tmp_path, capsys):
    serve(monkeypatch, server, "cub", cub_archives(tmp_path / "build"))
    root = tmp_path / "cub"
    assert run(["cub", "--root", str(root)], capsys).code == 0
    server.state.log.clear()
    again = run(["cub", "--root", str(root)], capsys)
    assert again.code == 0 and server.state.log == [] and again.out.count("already in place") == 2


def test_timeout_and_unreachable_source_each_one_line(server, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(fetch, "TIMEOUT_S", 0.2)
    monkeypatch.setattr(fetch, "TRIES", 2)
    serve(monkeypatch, server, "flowers", flowers_archives(tmp_path / "build"))
    server.state.slow.add("/canonical/102flowers.tgz")
    root = tmp_path / "flowers"
    line = error_line(run(["flowers", "--root", str(root), "--mirror", "http://127.0.0.1:9/x"], capsys))
    assert "102flowers.tgz" in line and "http://127.0.0.1:9/x/102flowers.tgz: unreachable" in line
    assert "timed out" in line and not root.exists()


def test_flickr30k_says_where_to_request_it(capsys):
    line = error_line(run(["flickr30k"], capsys))
    assert "request it with the form at https://shannon.cs.illinois.edu/DenotationGraph/" in line


def test_unpack_a_partial_cub_you_built(tmp_path, capsys):
    archives = cub_archives(tmp_path / "build", classes=3)
    for name, data in archives.items():
        (tmp_path / name).write_bytes(data)
    root = tmp_path / "cub"
    args = ["cub", "--root", str(root), "--unpack", *(str(tmp_path / name) for name in archives)]
    assert run(args, capsys).code == 0
    dm = CUBCaptions(root=str(root), cache_dir=str(tmp_path / "cache"), cache_workers=1, split="images")
    assert dm.load_splits()["train"].captions and dm.stats["images_missing"] > cub_fx.PER_CLASS


def test_data_download_true_fetches_through_the_mirror(server, monkeypatch, tmp_path):
    serve(monkeypatch, server, "flowers", flowers_archives(tmp_path / "build"), sources=("mirror",))
    monkeypatch.setitem(DATASETS, "flowers", dataclasses.replace(
        DATASETS["flowers"], files=tuple(dataclasses.replace(f, urls=()) for f in DATASETS["flowers"].files)))
    dm = FlowersCaptions(root=str(tmp_path / "flowers"), cache_dir=str(tmp_path / "cache"), cache_workers=1,
                         download=True, download_mirror=f"{server.url}/mirror/")
    assert dm.load_splits()["train"].captions
