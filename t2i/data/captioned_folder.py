"""Moved (one release) to t2i.data.any_folder (any folder of captioned images); the old path,
and `_target_: t2i.data.captioned_folder.CaptionedFolder` in saved run configs, still
resolve, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

__getattr__ = moved_names(__name__, {n: "t2i.data.any_folder" for n in (
    "Bad", "Folder", "split_of", "caption_list", "metadata_rows", "read_imagefolder", "read_sidecar",
    "detect_layout", "slug", "CaptionedFolder")})
