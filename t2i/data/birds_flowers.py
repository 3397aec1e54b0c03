"""Moved (one release): CUB to t2i.data.cub, Flowers to t2i.data.flowers, over the shared
Reed-caption reader t2i.data.reed_captions. The old paths (and `_target_`s in saved run
configs) still resolve, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

_READER = ("BenchmarkCaptions", "Record", "REED_CLASS_FILES", "read_class_list", "read_reed_class_lists",
           "read_pickled_names", "seeded_class_split", "class_label", "records_from_folders")
__getattr__ = moved_names(__name__, {
    **{n: "t2i.data.reed_captions" for n in _READER},
    **{n: "t2i.data.cub" for n in ("CUBCaptions", "CaltechMetadata", "read_caltech_metadata", "HOW_TO_GET_CUB",
                                   "CUB_LAYOUT")},
    **{n: "t2i.data.flowers" for n in ("FlowersCaptions", "HOW_TO_GET_FLOWERS", "FLOWERS_LAYOUT")}})
