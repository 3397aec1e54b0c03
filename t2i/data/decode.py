"""Opening one image file for the cache: a pixel limit checked on the header (before any
pixel is decoded), and every PIL mode turned into 8-bit RGB by what its values mean.

`convert("RGB")` alone is wrong for some modes: a 16-bit PNG (modes I;16, I;16B, I) is
clipped to 255 (97% white), a float image to 0/255, and alpha is dropped, showing
whatever colour the transparent pixels happen to hold. Here 16-bit values are scaled to
8 bits, floats in [0, 1] are scaled, and alpha is composited on white. Each such
conversion returns a note, so the datasets can name the files it touched."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# PIL's own default (about 89 megapixels, a 9459 x 9459 image): larger images are
# skipped. data.max_image_pixels changes it for your own folder (captioned_folder).
MAX_IMAGE_PIXELS = 89_478_485
WIDE_INTEGER = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit PNG/TIFF greyscale as PIL opens it
WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


class TooLarge(ValueError):
    """An image over the pixel limit: skipped, never decoded."""


def open_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Image.open, refusing (TooLarge) an image over `max_pixels`. Opening reads only the
    header, so the check comes before any pixel is decoded. PIL's own check (a
    process-wide setting that only warns between 1x and 2x its limit, and names no
    size) is off for the open: ours is the one limit, whatever its value."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        im = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise TooLarge(f"{width}x{height} is over the limit of {max_pixels} pixels (data.max_image_pixels)")
    return im


def to_rgb(im: Image.Image) -> tuple[Image.Image, str | None]:
    """8-bit RGB of any mode, and a note when the conversion is more than a format change."""
    mode = im.mode
    if mode == "RGB":
        return im, None
    if mode in WIDE_INTEGER:
        values = np.asarray(im).astype(np.float64)
        grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)  # 65535 -> 255
        return Image.fromarray(grey, "L").convert("RGB"), f"16-bit ({mode}) scaled to 8 bits"
    if mode == "F":
        values = np.nan_to_num(np.asarray(im, dtype=np.float64))
        scale = 255.0 if values.size and values.min() >= 0 and values.max() <= 1 else 1.0
        grey = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB"), "float (F) scaled to 8 bits"
    if mode == "P" and "transparency" in im.info or mode in WITH_ALPHA:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), f"transparency ({mode}) composited on white"
    note = f"{mode} converted to RGB" if mode == "CMYK" else None  # L, 1, P, YCbCr: exact
    return im.convert("RGB"), note
