"""Synthetic circles and squares with attributes and English captions: the embedded
default data. Everything is generated from a seed: no files, no download."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from t2i.data.base import BaseDataModule, ImageArrayDataset

SHAPES = ("circle", "square")
SIZES = ("small", "large")
FILLS = ("outline", "filled")
QUADRANTS = ("top left", "top right", "bottom left", "bottom right", "centre")
POSITIONS = ("fixed", "random", "quadrant", "circle_fixed_square_quadrant")
# Half-size (radius or half side) as a fraction of the image side, per size class.
SIZE_RANGES = {"small": (0.10, 0.16), "large": (0.22, 0.30)}
# The discrete attributes a classifier can read off an image (alignment and domain FID).
TARGET_NAMES = ("shape", "size", "fill", "position")
TARGET_CLASSES = {"shape": 2, "size": 2, "fill": 2, "position": 5}


@dataclass
class ShapeSpec:
    shape: np.ndarray     # 0 circle, 1 square
    size: np.ndarray      # 0 small, 1 large
    half: np.ndarray      # radius / half side in pixels
    cx: np.ndarray        # centre in pixels
    cy: np.ndarray
    filled: np.ndarray    # 0 outline, 1 filled
    position: np.ndarray  # index into QUADRANTS


def _choice(rng, n, mode, options):
    if mode == "random":
        return rng.integers(0, len(options), n)
    if mode not in options:
        raise ValueError(f"expected one of {options + ('random',)}, got {mode!r}")
    return np.full(n, options.index(mode))


def sample_specs(n: int, image_size: int, rng: np.random.Generator, shape="random", size="random",
                 fill="random", position="random", quadrant="top left", midline_gap=0.06) -> ShapeSpec:
    """Draw n shape specifications. `position`:
    fixed: every shape centred; random: anywhere (keeping clear of the midlines so the
    caption's quadrant is unambiguous); quadrant: inside `quadrant`;
    circle_fixed_square_quadrant: the source report's mix, circles centred, squares in `quadrant`."""
    if position not in POSITIONS:
        raise ValueError(f"data.position must be one of {POSITIONS}, got {position!r}")
    if quadrant not in QUADRANTS[:4]:
        raise ValueError(f"data.quadrant must be one of {QUADRANTS[:4]}, got {quadrant!r}")
    s = float(image_size)
    shp, sz, fl = _choice(rng, n, shape, SHAPES), _choice(rng, n, size, SIZES), _choice(rng, n, fill, FILLS)
    lo = np.array([SIZE_RANGES[k][0] for k in SIZES])[sz]
    hi = np.array([SIZE_RANGES[k][1] for k in SIZES])[sz]
    half = (lo + (hi - lo) * rng.random(n)) * s

    if position == "fixed":
        where = np.full(n, 4)
    elif position == "quadrant":
        where = np.full(n, QUADRANTS.index(quadrant))
    elif position == "random":
        where = rng.integers(0, 4, n)
    else:
        where = np.where(shp == 0, 4, QUADRANTS.index(quadrant))

    # Centre coordinate range per quadrant: inside the image, off the midline band.
    gap = midline_gap * s
    mid = s / 2
    cx, cy = np.full(n, mid), np.full(n, mid)
    for q in range(4):
        m = where == q
        if not m.any():
            continue
        right, bottom = q in (1, 3), q in (2, 3)
        for coord, positive in ((cx, right), (cy, bottom)):
            low = np.where(positive, mid + gap, half[m])
            high = np.where(positive, s - half[m], mid - gap)
            high = np.maximum(high, low)  # large shapes near the midline: clamp
            coord[m] = low + (high - low) * rng.random(m.sum())
    return ShapeSpec(shp, sz, half, cx, cy, fl, where)


def render(spec: ShapeSpec, image_size: int, outline_width: float | None = None) -> np.ndarray:
    """Rasterise specs to uint8 images (N, 1, S, S): white shapes on black, edges
    anti-aliased by pixel coverage (a pixel half inside is grey), so images are not
    purely binary: a discriminator cannot win on hard edges alone."""
    n = len(spec.shape)
    width = outline_width or max(1.0, image_size / 32)
    grid = np.arange(image_size, dtype=np.float32) + 0.5
    out = np.empty((n, 1, image_size, image_size), dtype=np.uint8)
    for start in range(0, n, 512):  # chunks keep the distance fields small
        sl = slice(start, start + 512)
        dx = grid[None, None, :] - spec.cx[sl, None, None]
        dy = grid[None, :, None] - spec.cy[sl, None, None]
        circle = np.sqrt(dx ** 2 + dy ** 2)
        square = np.maximum(np.abs(dx), np.abs(dy))
        dist = np.where(spec.shape[sl, None, None] == 1, square, circle)
        half = spec.half[sl, None, None]
        inside = np.clip(half - dist + 0.5, 0, 1)             # coverage of the filled shape
        ring = np.minimum(inside, np.clip(dist - (half - width) + 0.5, 0, 1))
        cover = np.where(spec.filled[sl, None, None] == 1, inside, ring)
        out[sl, 0] = np.round(cover * 255).astype(np.uint8)
    return out


def caption(spec: ShapeSpec, i: int) -> str:
    where = QUADRANTS[spec.position[i]]
    return f"a {SIZES[spec.size[i]]} {FILLS[spec.filled[i]]} {SHAPES[spec.shape[i]]} in the {where}"


def attributes(spec: ShapeSpec, image_size: int) -> np.ndarray:
    """Continuous feature vector per image: [shape, size, centre x, centre y, filled],
    size and centre as fractions of the image side (the source report's 2- and 4-feature sets
    are its first 2 and 4 columns)."""
    s = float(image_size)
    return np.stack([spec.shape, spec.half / s, spec.cx / s, spec.cy / s, spec.filled], 1).astype(np.float32)


def targets(spec: ShapeSpec) -> np.ndarray:
    return np.stack([spec.shape, spec.size, spec.filled, spec.position], 1).astype(np.int64)


def check_settings(image_size: int, splits, options: dict) -> None:
    """The settings both shapes data modules take: sizes, split sizes, drawing options."""
    if image_size not in (32, 64):
        raise ValueError(f"data.image_size must be 32 or 64, got {image_size}")
    if len(splits) != 3 or min(splits) < 1:
        raise ValueError(f"data.splits must be three positive sizes (train, val, test), got {splits}")
    sample_specs(1, image_size, np.random.default_rng(0), **options)  # validate options now


def split_spec(seed: int, index: int, n: int, image_size: int, options: dict) -> ShapeSpec:
    """The one draw of split `index`'s shapes: ShapesDataModule and ShapesCaptionsDataModule
    give the same images for the same seed and settings."""
    return sample_specs(n, image_size, np.random.default_rng([seed, index]), **options)


class ShapesDataModule(BaseDataModule):
    """Circles and squares with captions ("a large filled circle in the top left")."""

    channels = 1
    domain_name = "shapes"
    target_names = TARGET_NAMES
    target_classes = TARGET_CLASSES

    def __init__(self, image_size: int = 64, splits=(6000, 1000, 1000), shape="random", size="random",
                 fill="random", position="random", quadrant="top left", num_features: int = 5, **kw):
        super().__init__(**kw)
        self.options = dict(shape=shape, size=size, fill=fill, position=position, quadrant=quadrant)
        check_settings(image_size, splits, self.options)
        if not 1 <= num_features <= 5:
            raise ValueError(f"data.num_features must be in 1..5, got {num_features}")
        self.image_size, self.splits, self.num_features = image_size, tuple(splits), num_features

    def make_split(self, index: int) -> ImageArrayDataset:
        spec = split_spec(self.seed, index, self.splits[index], self.image_size, self.options)
        return ImageArrayDataset(
            torch.from_numpy(render(spec, self.image_size)),
            caption=[caption(spec, i) for i in range(len(spec.shape))],
            attributes=torch.from_numpy(attributes(spec, self.image_size)[:, : self.num_features]),
            targets=torch.from_numpy(targets(spec)),
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set, self.test_set = (self.make_split(i) for i in range(3))
