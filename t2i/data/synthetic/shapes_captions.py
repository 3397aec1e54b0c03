"""The generated circles and squares with their captions, as a captioned data module
(ShapesDataModule, beside it in shapes.py, serves the same images without captions)."""
from __future__ import annotations

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
        self.options = dict(shape=shape, size=size, fill=fill, position=position, quadrant=quadrant)
        shapes_lib.check_settings(image_size, splits, self.options)
        self.splits = tuple(splits)

    def _split(self, index: int) -> CaptionedImages:
        # the same draw as ShapesDataModule: same seed, same images
        spec = shapes_lib.split_spec(self.seed, index, self.splits[index], self.image_size, self.options)
        return CaptionedImages(torch.from_numpy(shapes_lib.render(spec, self.image_size)),
                               [[shapes_lib.caption(spec, i)] for i in range(len(spec.shape))],
                               {"targets": torch.from_numpy(shapes_lib.targets(spec))})

    def load_splits(self) -> dict[str, CaptionedImages]:
        return {name: self._split(i) for i, name in enumerate(SPLITS)}
