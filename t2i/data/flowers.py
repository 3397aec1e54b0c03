"""Oxford-102 flowers with the captions of Reed et al. (2016), 10 per image: `jpg/image_NNNNN.jpg`
+ `text_c10/class_000NN/image_NNNNN.txt` (the class folder is the label), with Reed's
class lists when present (see docs/birds_flowers.md). The shared reader and splits:
t2i.data.reed_captions."""
from __future__ import annotations

import logging

from t2i.data.base import DatasetNotFoundError, find_below
from t2i.data.reed_captions import (
    BenchmarkCaptions,
    Record,
    read_reed_class_lists,
    records_from_folders,
)
from t2i.data.splits import pick

log = logging.getLogger("t2i")

HOW_TO_GET_FLOWERS = (
    "  all of it: data.download=true, or python -m t2i.data.download flowers --root ROOT\n"
    "  images: 102flowers.tgz (jpg/image_NNNNN.jpg) from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/\n"
    "  captions (+ class split): cvpr2016_flowers.tar.gz (text_c10/class_000NN/image_NNNNN.txt) from "
    "https://github.com/reedscot/icml2016")
FLOWERS_LAYOUT = "jpg/image_NNNNN.jpg with text_c10/class_000NN/image_NNNNN.txt"


class FlowersCaptions(BenchmarkCaptions):
    """Oxford-102 flowers: 8,189 photos of 102 species, 10 captions each (Reed et al.).
    The class folder of text_c10 is the label. Without Reed's class lists the split is
    a seeded 82 train+val / 20 test classes (logged)."""

    name = "Flowers"
    download_name = "flowers"
    dataset_name = "flowers"
    how_to_get = HOW_TO_GET_FLOWERS
    layout_help = FLOWERS_LAYOUT
    test_class_fraction = 20 / 102  # Reed: 82 train+val / 20 test classes
    val_class_fraction = 20 / 82    # Reed: 62 train / 20 val classes

    def read_records(self) -> tuple[list[Record], dict[str, set[str]]]:
        text = find_below(self.root, "text_c10", folder=True)
        if text is None:
            raise DatasetNotFoundError(f"Flowers: no text_c10/ caption folder under data.root={self.root}. "
                                       f"Expected {FLOWERS_LAYOUT}.\nGet it:\n{HOW_TO_GET_FLOWERS}")
        jpg = find_below(self.root, "jpg", folder=True) or self.root / "jpg"
        records = records_from_folders(text, lambda klass, name: jpg / f"{name}.jpg")
        if not records:
            raise DatasetNotFoundError(f"Flowers: no caption file in {text}. Expected {FLOWERS_LAYOUT}.\n"
                                       f"Get it:\n{HOW_TO_GET_FLOWERS}")
        self._notes.append(f"captions in {text}, images in {jpg}")
        return records, read_reed_class_lists(text.parent, root=self.root)

    def image_split(self, records: list[Record]) -> dict[str, str]:
        count = min(max(1, round(self.test_class_fraction * len(records))), max(0, len(records) - 1))
        test = pick([r.key for r in records], count, self.split_seed)
        self._notes.append(f"seeded image split: {count} test images (split_seed {self.split_seed}), "
                           "classes shared by train and test")
        return {r.key: "test" if r.key in test else "trainval" for r in records}
