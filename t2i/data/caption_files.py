"""Moved (one release) to t2i.data.caption_file_reader; the old path still resolves, with a
DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

__getattr__ = moved_names(__name__, {n: "t2i.data.caption_file_reader" for n in (
    "read_lines", "read_caption_file", "decode_part")})
