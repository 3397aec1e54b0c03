"""Moved (one release): the captioned data module's base to t2i.data.caption_datamodule,
its Dataset, sampler and collate to t2i.data.caption_dataset, the captioned shapes to
t2i.data.synthetic.shapes_captions. The old paths (and `_target_`s in saved run configs)
still resolve, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

_DATASET = ("SPLITS", "CaptionBatch", "CaptionDataset", "CaptionSampler", "CaptionedImages", "WordVectorCollate",
            "clean_caption", "unit_range")
__getattr__ = moved_names(__name__, {**{n: "t2i.data.caption_dataset" for n in _DATASET},
                                     "CaptionDataModule": "t2i.data.caption_datamodule",
                                     "ShapesCaptionsDataModule": "t2i.data.synthetic.shapes_captions"})
