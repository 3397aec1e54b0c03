"""Moved (one release) to t2i.image_generator (what an image generator promises); the old
path still resolves, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

__getattr__ = moved_names(__name__, {n: "t2i.image_generator" for n in (
    "NOISE_KINDS", "draw_noise", "ImageGenerator", "is_text_to_image")})
