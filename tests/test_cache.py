"""The decoded-image cache: one memory-mapped uint8 array per split, rebuilt exactly
when its source files or its preprocessing settings change, bad images skipped and counted."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

from t2i.data import cache as cache_mod
from t2i.data.cache import cached_images

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def write_images(folder, colours=COLOURS, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, colour in enumerate(colours):
        path = folder / f"{i}.png"  # PNG: lossless, so decoded colours are exact
        Image.new("RGB", size, colour).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def decode_counter(monkeypatch):
    """Counts image decodes (the cache is built in this process with workers=1)."""
    calls = []
    real = cache_mod.load_image

    def counting(path, size, *rest):
        calls.append(str(path))
        return real(path, size, *rest)

    monkeypatch.setattr(cache_mod, "load_image", counting)
    return calls


def test_cache_is_a_read_only_memmap_of_the_decoded_images(tmp_path):
    paths = write_images(tmp_path / "img")
    images, kept = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert isinstance(images, np.memmap) and images.dtype == np.uint8 and not images.flags.writeable
    assert images.shape == (5, 3, 16, 16)
    assert kept.tolist() == [0, 1, 2, 3, 4]
    for image, colour in zip(images, COLOURS):
        assert image.reshape(3, -1).mean(1).round().tolist() == list(colour)
    assert len(list((tmp_path / "cache" / "images").glob("train-*.npy"))) == 2  # array + kept indices


def test_cache_is_reused_when_nothing_changed(tmp_path, decode_counter):
    paths = write_images(tmp_path / "img")
    first, _ = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert len(decode_counter) == 5
    second, _ = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert len(decode_counter) == 5  # nothing decoded again
    assert second.filename == first.filename and np.array_equal(first, second)


def test_cache_is_rebuilt_when_settings_change(tmp_path, decode_counter):
    paths = write_images(tmp_path / "img")
    small, _ = cached_images(paths, 8, tmp_path / "cache", "train", workers=1)
    large, _ = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert len(decode_counter) == 10
    assert small.shape[-1] == 8 and large.shape[-1] == 16 and small.filename != large.filename
    cached_images(paths, 8, tmp_path / "cache", "train", workers=1)  # both versions stay usable
    assert len(decode_counter) == 10


def test_cache_is_rebuilt_when_a_source_file_changes(tmp_path, decode_counter):
    paths = write_images(tmp_path / "img")
    before, _ = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    Image.new("RGB", (40, 30), (10, 20, 30)).save(paths[2])
    stat = os.stat(paths[2])  # make sure the mtime moves even on coarse-clock file systems
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    after, _ = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert len(decode_counter) == 10
    assert after[2].reshape(3, -1).mean(1).round().tolist() == [10, 20, 30]
    assert np.array_equal(before[[0, 1, 3, 4]], after[[0, 1, 3, 4]])


def test_cache_is_rebuilt_when_the_file_list_changes(tmp_path, decode_counter):
    paths = write_images(tmp_path / "img")
    cached_images(paths[:4], 16, tmp_path / "cache", "train", workers=1)
    images, _ = cached_images(paths, 16, tmp_path / "cache", "train", workers=1)
    assert len(decode_counter) == 9 and len(images) == 5


def test_bad_images_are_skipped_and_counted(tmp_path, caplog):
    paths = write_images(tmp_path / "img")
    broken = tmp_path / "img" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    sources = [paths[0], broken, paths[1], tmp_path / "img" / "missing.jpg", paths[2]]
    with caplog.at_level(logging.WARNING, logger="t2i"):
        images, kept = cached_images(sources, 16, tmp_path / "cache", "val", workers=1)
    assert kept.tolist() == [0, 2, 4] and images.shape == (3, 3, 16, 16)
    for image, colour in zip(images, COLOURS[:3]):
        assert image.reshape(3, -1).mean(1).round().tolist() == list(colour)
    assert "2 of 5 images missing or unreadable" in caplog.text


def test_parallel_decoding_keeps_order_across_chunks(tmp_path):
    """More than one 64-image chunk, decoded by 2 processes, with a bad file in the
    second chunk: same array and indices as decoding in one process."""
    rng = np.random.default_rng(0)
    colours = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(70)]
    paths = write_images(tmp_path / "img", colours, size=(12, 10))
    paths[66].write_bytes(b"garbage")
    serial, kept_serial = cached_images(paths, 8, tmp_path / "serial", "train", workers=1)
    parallel, kept_parallel = cached_images(paths, 8, tmp_path / "parallel", "train", workers=2)
    assert kept_parallel.tolist() == kept_serial.tolist() == [i for i in range(70) if i != 66]
    assert np.array_equal(serial, parallel)
    assert parallel[66].reshape(3, -1).mean(1).round().tolist() == list(colours[67])


def test_a_build_writes_files_named_by_its_process_and_leaves_none_behind(tmp_path, monkeypatch):
    """Two runs building one cache at once (a sweep) must not share a memory-mapped scratch
    file (one truncating the other's is a SIGBUS): each build's files carry its pid."""
    paths = write_images(tmp_path / "img")
    seen, real = [], cache_mod.load_image

    def spying(path, size, *rest):
        seen.extend(p.name for p in (tmp_path / "cache" / "images").iterdir())
        return real(path, size, *rest)

    monkeypatch.setattr(cache_mod, "load_image", spying)
    cached_images(paths, 8, tmp_path / "cache", "split", workers=1)
    scratch = {name for name in seen if name.startswith(".")}
    assert scratch and all(f"-{os.getpid()}." in name for name in scratch)
    key = cache_mod.cache_key(paths, {"size": 8, "version": cache_mod.VERSION})
    assert sorted(p.name for p in (tmp_path / "cache" / "images").iterdir()) == sorted(
        f"split-{key}{ext}" for ext in (".npy", ".kept.npy"))

    def failing(path, size, *rest):
        raise KeyboardInterrupt  # a run stopped mid-build

    monkeypatch.setattr(cache_mod, "load_image", failing)
    with pytest.raises(KeyboardInterrupt):
        cached_images(paths, 16, tmp_path / "cache", "split", workers=1)
    assert len(list((tmp_path / "cache" / "images").iterdir())) == 2  # only the first, complete cache
