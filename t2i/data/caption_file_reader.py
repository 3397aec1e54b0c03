"""Captioned image files, read one way for every file-based text-to-image dataset
(Flickr, CUB / Flowers, your own folder): text files that never fail on a stray byte,
caption files of one caption per line, and a split's images decoded once into the cache
with the captions of the readable ones."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from t2i.data.cache import decode_images
from t2i.data.caption_dataset import CaptionedImages
from t2i.data.decode import MAX_IMAGE_PIXELS


def read_lines(path: Path) -> list[str]:
    # the real files are UTF-8 with the odd stray byte: never fail on one
    return path.read_bytes().decode("utf-8", errors="replace").splitlines()


def read_caption_file(path: Path) -> list[str]:
    """A caption file's non-empty lines, whitespace collapsed (Reed's text_c10 files: 10
    lowercase lines, some cut at 201 characters; sidecar photo.txt files). An unreadable
    file has no captions: the caller counts it as empty."""
    try:
        return [" ".join(line.split()) for line in read_lines(path) if line.strip()]
    except OSError:
        return []


def decode_part(files: Sequence[Path], captions: Sequence[list[str]], image_size: int, cache_dir: Path, name: str,
                workers: int | None = None, boxes: Sequence | None = None,
                fields: dict[str, torch.Tensor] | None = None, max_pixels: int = MAX_IMAGE_PIXELS,
                ) -> tuple[CaptionedImages, dict[int, str], dict[int, str]]:
    """One split: `files` decoded (resized, centre-cropped; cached as `name`), with their
    captions and per-file `fields` kept for the readable ones. Returns the split, the
    files skipped (index -> why: unreadable, too large) and those converted (index ->
    how: 16-bit, alpha), for the caller's counts and report."""
    if not files:
        empty = np.zeros((0, 3, image_size, image_size), np.uint8)
        return CaptionedImages(empty, [], {k: v[:0] for k, v in (fields or {}).items()}), {}, {}
    decoded = decode_images(list(files), image_size, cache_dir, name, workers, boxes, max_pixels)
    kept = decoded.kept.tolist()
    index = torch.tensor(kept, dtype=torch.long)
    part = CaptionedImages(decoded.images, [captions[i] for i in kept],
                           {k: v[index] for k, v in (fields or {}).items()})
    return part, decoded.skipped(len(files)), decoded.converted()
