"""The generated circles and squares with their captions, as a captioned data module
(ShapesDataModule, beside it in shapes.py, serves the same images without captions)."""
from __future__ import annotations

import numpy as np
import torch

from t2i.data.caption_datamodule import SPLITS, CaptionDataModule, CaptionedImages
from t2i.data.synthetic import shapes as shapes_lib


class ShapesCaptionsDataModule(CaptionDataModule):
    """The generated circles and squares with their captions ("a large filled circle in
    the top left"), one caption per image, and the attribute targets (shape, size, fill,
    position) that the domain classifier and the alignment metric read."""

    channels = 1
    domain_name = "shapes"
    target_names = shapes_lib.TARGET_NAMES
    target_classes = shapes_lib.TARGET_CLASSES

    def __init__(self, image_size: int = 32, splits=(6000, 1000, 1000), shape="random", size="random",
                 fill="random", position="random", quadrant="top left", **kw):
        super().__init__(image_size=image_size, **kw)
        if image_size not in (32, 64):
            raise ValueError(f"data.image_size must be 32 or 64, got {image_size}")
        if len(splits) != 3 or min(splits) < 1:
            raise ValueError(f"data.splits must be three positive sizes (train, val, test), got {splits}")
        self.splits = tuple(splits)
        self.options = dict(shape=shape, size=size, fill=fill, position=position, quadrant=quadrant)
        shapes_lib.sample_specs(1, image_size, np.random.default_rng(0), **self.options)  # validate now

    def _split(self, index: int) -> CaptionedImages:
        # the same generator streams as ShapesDataModule: same seed, same images
        rng = np.random.default_rng([self.seed, index])
        spec = shapes_lib.sample_specs(self.splits[index], self.image_size, rng, **self.options)
        return CaptionedImages(torch.from_numpy(shapes_lib.render(spec, self.image_size)),
                               [[shapes_lib.caption(spec, i)] for i in range(len(spec.shape))],
                               {"targets": torch.from_numpy(shapes_lib.targets(spec))})

    def load_splits(self) -> dict[str, CaptionedImages]:
        return {name: self._split(i) for i, name in enumerate(SPLITS)}
