"""Issue 38, images: every PIL mode decoded by what its values mean (a 16-bit PNG is not
97% white), and an image over the pixel limit skipped, counted and named like an
unreadable one, with the limit in the message and settable (data.max_image_pixels)."""
from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2i.data.any_folder import CaptionedFolder
from t2i.data.decode import MAX_IMAGE_PIXELS, TooLarge, open_image, to_rgb
from t2i.run import train
from tests.fixtures import captioned_folder as fx
from tests.test_captioned_folder import TINY_GAN

GREY16 = 30000  # 30000 / 257 -> 117; clipped to 8 bits it was 255


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: Path, side: int = 14000) -> Path:
    """A valid 1-bit side x side PNG, written without PIL (which would allocate it)."""
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte + packed zero pixels
    pixels = zlib.compress(row * side, 1)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b""))
    return path


def deep_png(path: Path) -> Path:
    Image.fromarray(np.full((70, 70), GREY16, np.uint16)).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    return path


def folder_with_odd_images(root: Path) -> Path:
    fx.write_sidecar(root, per_kind=2)
    for name, write in (("deep", deep_png), ("huge", huge_png)):
        write(root / f"{name}.png")
        (root / f"{name}.txt").write_text(f"a {name} picture\n")
    return root


def pixel_of(dm: CaptionedFolder, caption: str) -> np.ndarray:
    for split in (dm.train_set, dm.val_set, dm.test_set):
        for i in range(len(split)):
            if caption in split.captions[int(split.first[i]):int(split.first[i]) + int(split.count[i])]:
                return np.asarray(split.images[i])
    raise AssertionError(f"{caption!r} not loaded")


def test_a_16_bit_and_a_huge_png_are_converted_and_skipped_and_named(tmp_path, caplog):
    root = folder_with_odd_images(tmp_path / "photos")
    with caplog.at_level(logging.INFO, logger="t2i"):
        dm = CaptionedFolder(root=str(root), cache_dir=str(tmp_path / "cache"), embedding_dim=16,
                             word2vec=dict(epochs=1), val_size=1, test_size=1)
        dm.setup()
    assert (pixel_of(dm, "a deep picture") == round(GREY16 / 257)).all()  # not white
    assert dm.stats["image_too_large"] == 1 and dm.stats["converted"] == 1
    assert "huge.png (too large: 14000x14000 is over the limit of 89478485 pixels" in caplog.text
    assert "deep.png: 16-bit" in caplog.text and "scaled to 8 bits" in caplog.text


def test_a_run_on_the_folder_finishes(make_cfg, tmp_path):
    root = folder_with_odd_images(tmp_path / "photos")
    cfg = make_cfg(["experiment=shapes_t2i", "data=captioned_folder", f"data.root={root}", "model.ngf=4",
                    "model.ndf=4", "trainer.max_steps=2", "eval.every_n_steps=0", "evaluate_after_fit=false",
                    *TINY_GAN])
    train(cfg)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_the_limit_is_settable_and_its_warning_zone_refused(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGB", (80, 80)).save(path)  # 6400 pixels: PIL would only warn (1x-2x its limit)
    with pytest.raises(TooLarge, match="80x80 is over the limit of 5000 pixels"):  # PIL would only warn
        open_image(path, 5000)
    assert open_image(path, 6400).size == (80, 80)
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS  # PIL's own setting restored
    with pytest.raises(ValueError, match="data.max_image_pixels"):
        CaptionedFolder(root=str(tmp_path), max_image_pixels=0)


def rgb(im: Image.Image) -> tuple[np.ndarray, str | None]:
    out, note = to_rgb(im)
    assert out.mode == "RGB"
    return np.asarray(out), note


def test_every_mode_decodes_by_its_values():
    wide = np.array([[0, 257 * 100, 65535]], np.uint16)
    for im in (Image.fromarray(wide), Image.frombytes("I;16B", (3, 1), wide.astype(">u2").tobytes()),
               Image.fromarray(wide.astype(np.int32), "I")):
        values, note = rgb(im)
        assert values[0, :, 0].tolist() == [0, 100, 255] and "16-bit" in note, im.mode
    values, note = rgb(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F"))
    assert values[0, :, 0].tolist() == [0, 128, 255] and "float" in note
    la = Image.fromarray(np.array([[[10, 255], [10, 0]]], np.uint8), "LA")
    assert rgb(la)[0][0].tolist() == [[10] * 3, [255] * 3]  # transparent -> white, not the hidden grey
    palette = Image.new("P", (2, 1))
    palette.putpalette([200, 0, 0, 0, 0, 200])
    palette.putpixel((1, 0), 1)
    assert rgb(palette) == (pytest.approx(np.array([[[200, 0, 0], [0, 0, 200]]])), None)
    assert rgb(Image.new("1", (2, 1), 1))[0].tolist() == [[[255] * 3] * 2]
    values, note = rgb(Image.new("CMYK", (1, 1), (0, 255, 255, 0)))
    assert values[0, 0].tolist() == [255, 0, 0] and "CMYK" in note
