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
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from t2i.atomic_files import atomic_path, atomic_write_text, check_space, load_cache, no_space_as_error
from t2i.data.decode import MAX_IMAGE_PIXELS, TooLarge, open_image, to_rgb

# of the decoding: 2 decodes 16-bit, float and transparent images by their values (1 clipped them)
VERSION = 2

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


def load_image(path: str | Path, size: int, box: Sequence[float] | None = None,
               max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray | None, str | None]:
    """An image file -> (uint8 (3, size, size), note): RGB (every mode by what its values
    mean, see decode.to_rgb), cropped to the square around `box` (x, y, w, h) when one is
    given, shorter side resized to `size`, centre-cropped. The note names a conversion
    that changed the values (16-bit, alpha). A missing, unreadable or too large file
    gives (None, why)."""
    try:
        with open_image(path, max_pixels) as opened:
            im, note = to_rgb(opened)
            if box is not None:
                im = im.crop(object_crop(*im.size, box))
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            im = im.crop((left, top, left + size, top + size))
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy(), note
    except TooLarge as error:
        return None, f"too large: {error}"
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return None, f"unreadable ({type(error).__name__})"


def _load_chunk(args) -> list:
    paths, size, boxes, max_pixels = args
    return [load_image(p, size, b, max_pixels) for p, b in zip(paths, boxes)]


def cache_key(paths: Sequence[str | Path], settings: dict) -> str:
    h = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:16]


class Decoded(NamedTuple):
    """A split's cache: `images` (M, 3, S, S) read-only memory-mapped uint8, `kept` the
    indices into the paths they came from, `notes` index -> why it was skipped (not in
    kept) or how it was converted (in kept)."""
    images: np.ndarray
    kept: np.ndarray
    notes: dict[int, str]

    def skipped(self, count: int) -> dict[int, str]:
        kept = set(self.kept.tolist())
        return {i: self.notes.get(i, "unreadable") for i in range(count) if i not in kept}

    def converted(self) -> dict[int, str]:
        kept = set(self.kept.tolist())
        return {i: note for i, note in self.notes.items() if i in kept}


def cached_images(paths: Sequence[str | Path], size: int, cache_dir: str | Path, name: str,
                  workers: int | None = None, boxes: Sequence[Sequence[float] | None] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(images, kept) of `decode_images` (what most callers need)."""
    decoded = decode_images(paths, size, cache_dir, name, workers, boxes)
    return decoded.images, decoded.kept


def decode_images(paths: Sequence[str | Path], size: int, cache_dir: str | Path, name: str,
                  workers: int | None = None, boxes: Sequence[Sequence[float] | None] | None = None,
                  max_pixels: int = MAX_IMAGE_PIXELS) -> Decoded:
    """The readable images of `paths`, decoded once into the cache (see Decoded). `boxes`:
    per path, an object box (x, y, w, h) to crop around (see `object_crop`), or None.
    Images over `max_pixels` are skipped like unreadable ones."""
    settings = {"size": size, "version": VERSION}
    if max_pixels != MAX_IMAGE_PIXELS:
        settings["max_pixels"] = max_pixels
    if boxes is not None:
        if len(boxes) != len(paths):
            raise ValueError(f"{len(boxes)} boxes for {len(paths)} images")
        settings["boxes"] = hashlib.sha1(json.dumps([None if b is None else [float(v) for v in b]
                                                     for b in boxes]).encode()).hexdigest()
    else:
        boxes = [None] * len(paths)
    key = cache_key(paths, settings)
    folder = Path(cache_dir) / "images"
    files = CacheFiles(*(folder / f"{name}-{key}{ext}" for ext in (".npy", ".kept.npy", ".notes.json")))
    found = _load(files)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [(list(map(str, paths[s:s + 64])), size, list(boxes[s:s + 64]), max_pixels)
              for s in range(0, len(paths), 64)]
    _build(files, chunks, len(paths), size, workers or min(4, os.cpu_count() or 1))
    decoded = _load(files)
    _report(name, paths, decoded)
    return decoded


class CacheFiles(NamedTuple):
    array: Path
    kept: Path
    notes: Path  # written only when some image has a note


def _load(files: CacheFiles) -> Decoded | None:
    images = load_cache(files.array, lambda p: np.load(p, mmap_mode="r"))
    kept = load_cache(files.kept, np.load) if images is not None else None
    if images is None or kept is None:
        return None
    notes = load_cache(files.notes, lambda p: json.loads(p.read_text())) or {}
    return Decoded(images, kept, {int(i): str(why) for i, why in notes.items()})


def _build(files: CacheFiles, chunks: list, count: int, size: int, workers: int) -> None:
    # The scratch array and the final one exist together. Memory-mapped, a disk that
    # fills while they are written kills the process (SIGBUS, no message), so the space
    # is checked first; a write that still meets a full disk is one line too.
    needed = 2 * count * 3 * size * size + 64 * 1024
    what = f"building the image cache {files.array.name}"
    check_space(files.array.parent, needed, what)
    # Scratch and final files carry the process id (atomic_path's rule): two runs
    # building the same cache at once (a sweep, two jobs) must not truncate each
    # other's memory-mapped file, which is a SIGBUS; the last os.replace wins.
    tmp = files.array.with_name(f".{files.array.stem}.scratch-{os.getpid()}.npy")
    try:
        with no_space_as_error(files.array.parent, needed, what):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, 3, size, size))
            if workers > 1 and len(chunks) > 1:
                with ProcessPoolExecutor(workers) as pool:
                    kept, notes = _fill(out, pool.map(_load_chunk, chunks))
            else:
                kept, notes = _fill(out, map(_load_chunk, chunks))
            _write(files, out, kept, notes)
    finally:  # every way out, a signal's exception included (t2i/stops.py)
        tmp.unlink(missing_ok=True)


def _write(files: CacheFiles, out: np.ndarray, kept: list[int], notes: dict[int, str]) -> None:
    """The decoded images into the final files, each atomically."""
    with atomic_path(files.array) as part:
        final = np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=(len(kept), *out.shape[1:]))
        final[:] = out[: len(kept)]
        final.flush()
        del final
    with atomic_path(files.kept) as tmp_kept:
        np.save(tmp_kept, np.asarray(kept, dtype=np.int64))
    if notes:
        atomic_write_text(files.notes, json.dumps(notes))
    else:
        files.notes.unlink(missing_ok=True)  # a stale one from a build cut short


def _fill(out, results) -> tuple[list[int], dict[int, str]]:
    kept, notes, n = [], {}, 0
    for chunk in results:
        for image, note in chunk:
            if image is not None:
                out[len(kept)] = image
                kept.append(n)
            if note:
                notes[n] = note
            n += 1
    return kept, notes


def _report(name: str, paths: Sequence, decoded: Decoded) -> None:
    for what, found, level in (("missing or unreadable, skipped", decoded.skipped(len(paths)), logging.WARNING),
                               ("converted to 8-bit RGB", decoded.converted(), logging.INFO)):
        if found:
            named = [f"{paths[i]} ({why})" for i, why in list(found.items())[:5]]
            log.log(level, "%s: %d of %d images %s: %s%s", name, len(found), len(paths), what, ", ".join(named),
                        f" and {len(found) - 5} more" if len(found) > 5 else "")
