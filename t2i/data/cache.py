"""Decode a list of image files once into one memory-mappable uint8 array
(N, C, S, S) per split. The cache key covers the source files (path, size, mtime)
and the preprocessing settings, so it is rebuilt exactly when one of them changes.
Unreadable images are skipped and reported, never fatal."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from t2i.io import atomic_path, load_cache

log = logging.getLogger("t2i")


def object_crop(width: int, height: int, box: Sequence[float], scale: float = 1.5) -> tuple[int, int, int, int]:
    """The square around a bounding box (x, y, w, h) that StackGAN/AttnGAN crop CUB birds
    to: side `scale` x the box's longer side, centred on the box, clamped to the image
    (left, top, right, bottom)."""
    x, y, w, h = (float(v) for v in box)
    half = int(max(w, h) * scale / 2)
    cx, cy = int(x + w / 2), int(y + h / 2)
    left, top = max(0, cx - half), max(0, cy - half)
    right, bottom = min(width, cx + half), min(height, cy + half)
    if right - left < 2 or bottom - top < 2:  # a degenerate box: keep the whole image
        return 0, 0, width, height
    return left, top, right, bottom


def load_image(path: str | Path, size: int, box: Sequence[float] | None = None) -> np.ndarray | None:
    """JPEG/PNG -> uint8 (3, size, size): RGB (greyscale converted), cropped to the square
    around `box` (x, y, w, h) when one is given, shorter side resized to `size`,
    centre-cropped. None when the file is missing or unreadable."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if box is not None:
                im = im.crop(object_crop(*im.size, box))
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            im = im.crop((left, top, left + size, top + size))
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def _load_chunk(args) -> list:
    paths, size, boxes = args
    return [load_image(p, size) if b is None else load_image(p, size, b) for p, b in zip(paths, boxes)]


def cache_key(paths: Sequence[str | Path], settings: dict) -> str:
    h = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:16]


def cached_images(paths: Sequence[str | Path], size: int, cache_dir: str | Path, name: str,
                  workers: int | None = None, boxes: Sequence[Sequence[float] | None] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images, kept): a read-only memory-mapped uint8 array (M, 3, size, size)
    of the readable images and the indices into `paths` they came from. `boxes`: per
    path, an object box (x, y, w, h) to crop around (see `object_crop`), or None."""
    settings = {"size": size, "version": 1}
    if boxes is not None:
        if len(boxes) != len(paths):
            raise ValueError(f"{len(boxes)} boxes for {len(paths)} images")
        settings["boxes"] = hashlib.sha1(json.dumps([None if b is None else [float(v) for v in b]
                                                     for b in boxes]).encode()).hexdigest()
    else:
        boxes = [None] * len(paths)
    key = cache_key(paths, settings)
    folder = Path(cache_dir) / "images"
    array_path, kept_path = folder / f"{name}-{key}.npy", folder / f"{name}-{key}.kept.npy"
    images = load_cache(array_path, lambda p: np.load(p, mmap_mode="r"))
    kept = load_cache(kept_path, np.load) if images is not None else None
    if images is None or kept is None:
        folder.mkdir(parents=True, exist_ok=True)
        workers = workers or min(4, os.cpu_count() or 1)
        chunks = [(list(map(str, paths[s:s + 64])), size, list(boxes[s:s + 64])) for s in range(0, len(paths), 64)]
        # Scratch and final files carry the process id (atomic_path's rule): two runs
        # building the same cache at once (a sweep, two jobs) must not truncate each
        # other's memory-mapped file, which is a SIGBUS; the last os.replace wins.
        tmp = folder / f".{array_path.stem}.scratch-{os.getpid()}.npy"
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
            kept, i = [], 0
            if workers > 1 and len(chunks) > 1:
                with ProcessPoolExecutor(workers) as pool:
                    results = pool.map(_load_chunk, chunks)
                    kept, i = _fill(out, results, kept, i)
            else:
                kept, i = _fill(out, map(_load_chunk, chunks), kept, i)
            skipped = len(paths) - len(kept)
            if skipped:
                kept_set = set(kept)
                bad = [str(p) for j, p in enumerate(paths) if j not in kept_set]
                log.warning("%s: %d of %d images missing or unreadable, skipped: %s%s", name, skipped, len(paths),
                            ", ".join(bad[:5]), f" and {skipped - 5} more" if skipped > 5 else "")
            with atomic_path(array_path) as part:
                final = np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=(len(kept), 3, size, size))
                final[:] = out[: len(kept)]
                final.flush()
                del out, final
            with atomic_path(kept_path) as tmp_kept:
                np.save(tmp_kept, np.asarray(kept, dtype=np.int64))
        finally:
            tmp.unlink(missing_ok=True)
        images, kept = np.load(array_path, mmap_mode="r"), np.load(kept_path)
    return images, kept


def _fill(out, results, kept, i):
    n = 0
    for chunk in results:
        for image in chunk:
            if image is not None:
                out[len(kept)] = image
                kept.append(n)
            n += 1
    return kept, n
