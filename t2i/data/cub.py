"""CUB-200-2011 birds with the captions of Reed et al. (2016), 10 per image (see
docs/birds_flowers.md). Layouts read under `data.root` (detected):

- Reed's: `CUB_200_2011/{images/<NNN.Class>/<name>.jpg, images.txt, bounding_boxes.txt,
  train_test_split.txt, ...}` (Caltech) + `text_c10/<NNN.Class>/<name>.txt`
  + `trainvalclasses.txt` / `testclasses.txt` (/ `trainclasses.txt`, `valclasses.txt`);
- AttnGAN/DF-GAN's: `birds/CUB_200_2011/...` + `birds/text/<NNN.Class>/<name>.txt`
  + `birds/{train,test}/filenames.pickle` (pickled lists of "NNN.Class/name").

Images are cropped around the bird first (`crop=bbox`) before they are cached. The shared
reader and splits: t2i.data.reed_captions."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from t2i.data.base import DatasetNotFoundError, find_below
from t2i.data.caption_file_reader import read_lines
from t2i.data.reed_captions import (
    BenchmarkCaptions,
    Record,
    class_label,
    read_pickled_names,
    read_reed_class_lists,
    records_from_folders,
)

log = logging.getLogger("t2i")

HOW_TO_GET_CUB = (
    "  all of it: data.download=true, or python -m t2i.data.download cub --root ROOT\n"
    "  images + Caltech's metadata: CUB_200_2011.tgz from https://data.caltech.edu/records/65de6-vp158\n"
    "  captions + Reed's class split: cvpr2016_cub.tar.gz (text_c10/, trainvalclasses.txt, testclasses.txt, ...) "
    "from https://github.com/reedscot/icml2016\n"
    "  or AttnGAN's birds.zip metadata (birds/text/, birds/{train,test}/filenames.pickle, "
    "https://github.com/taoxugit/AttnGAN) with CUB_200_2011/ extracted into birds/")
CUB_LAYOUT = ("CUB_200_2011/images/<NNN.Class>/<name>.jpg (+ images.txt, bounding_boxes.txt, train_test_split.txt) "
              "with text_c10/<NNN.Class>/<name>.txt (Reed), or birds/CUB_200_2011/... with birds/text/ and "
              "birds/{train,test}/filenames.pickle (AttnGAN)")


@dataclass
class CaltechMetadata:
    """CUB_200_2011's per-image files, keyed by "NNN.Class/name" (images.txt path, no suffix)."""
    boxes: dict[str, tuple[float, float, float, float]] | None
    is_train: dict[str, bool] | None


def read_caltech_metadata(cub: Path | None) -> CaltechMetadata:
    def table(name: str) -> dict[str, list[str]] | None:
        path = cub / name if cub is not None else None
        if path is None or not path.is_file():
            return None
        rows = (line.split() for line in read_lines(path))
        return {row[0]: row[1:] for row in rows if len(row) >= 2}

    images = table("images.txt")
    if images is None:
        return CaltechMetadata(None, None)
    key_of = {i: row[0].rsplit(".", 1)[0] for i, row in images.items()}
    boxes = table("bounding_boxes.txt")
    split = table("train_test_split.txt")
    return CaltechMetadata(
        {key_of[i]: tuple(map(float, row[:4])) for i, row in boxes.items() if i in key_of and len(row) >= 4}
        if boxes is not None else None,
        {key_of[i]: row[0] == "1" for i, row in split.items() if i in key_of} if split is not None else None)


class CUBCaptions(BenchmarkCaptions):
    """CUB-200-2011: 11,788 birds of 200 species, 10 captions each (Reed et al.), in
    Reed's layout or AttnGAN/DF-GAN's `birds/` (`data.layout`: auto | reed | attngan).
    `crop=bbox` (default, the StackGAN/AttnGAN protocol every published FID uses) crops
    each bird to 1.5x its bounding box first; `crop=centre` keeps the whole photo."""

    name = "CUB"
    download_name = "cub"
    dataset_name = "cub"  # names the cached evaluators and metric labels (domain:cub-matching)
    how_to_get = HOW_TO_GET_CUB
    layout_help = CUB_LAYOUT
    test_class_fraction = 50 / 200  # Reed: 150 train+val / 50 test classes
    val_class_fraction = 50 / 150   # Reed: 100 train / 50 val classes

    def __init__(self, layout: str = "auto", crop: str = "bbox", **kw):
        super().__init__(**kw)
        if layout not in ("auto", "reed", "attngan"):
            raise ValueError(f"data.layout must be auto, reed or attngan, got {layout!r}")
        if crop not in ("bbox", "centre"):
            raise ValueError(f"data.crop must be bbox (1.5x the bird's box) or centre, got {crop!r}")
        self.layout, self.crop = layout, crop
        self._meta = CaltechMetadata(None, None)

    def detect_layout(self) -> tuple[str, Path, Path | None]:
        """(layout, caption folder, CUB_200_2011 folder or None)."""
        attngan = next((d for d in (self.root / "birds", self.root)
                        if (d / "text").is_dir() and (d / "train" / "filenames.pickle").is_file()), None)
        text_c10 = find_below(self.root, "text_c10", folder=True)
        layout = self.layout
        if layout == "auto":
            layout = "attngan" if attngan is not None else "reed" if text_c10 is not None else None
        captions = {"attngan": attngan / "text" if attngan is not None else None, "reed": text_c10}.get(layout)
        if captions is None:
            wanted = {"attngan": "birds/text/ + birds/train/filenames.pickle", "reed": "text_c10/"}
            zipped = [str(z) for z in (self.root / "birds" / "text.zip", self.root / "text.zip") if z.is_file()]
            raise DatasetNotFoundError(
                f"CUB: no captions under data.root={self.root} (looked for "
                f"{wanted[layout] if layout else ' or '.join(wanted.values())}). Expected {CUB_LAYOUT}."
                + (f" Extract {zipped[0]} next to it first." if zipped else "") + f"\nGet it:\n{HOW_TO_GET_CUB}")
        cub = (attngan / "CUB_200_2011") if attngan is not None and (attngan / "CUB_200_2011").is_dir() else None
        cub = cub or find_below(self.root, "CUB_200_2011", folder=True)
        if cub is None and (self.root / "images").is_dir():
            cub = self.root  # the archive's contents extracted straight into root
        return layout, captions, cub

    def read_records(self) -> tuple[list[Record], dict[str, set[str]]]:
        layout, captions, cub = self.detect_layout()
        images = (cub if cub is not None else self.root / "CUB_200_2011") / "images"
        self._meta = read_caltech_metadata(cub)
        if layout == "reed":
            # a caption folder is paired with the image folder of the same number: spellings differ
            folders = {class_label(d.name, d.name): d.name for d in images.iterdir() if d.is_dir()} \
                if images.is_dir() else {}
            records = records_from_folders(
                captions, lambda klass, name: images / folders.get(class_label(klass, klass), klass) / f"{name}.jpg")
            lists = read_reed_class_lists(captions.parent, root=self.root)
        else:
            records, lists = self._attngan_records(captions, images)
        self._notes.append(f"{layout} layout, captions in {captions}, images in {images}")
        if not records:
            raise DatasetNotFoundError(f"CUB: no caption file in {captions}. Expected {CUB_LAYOUT}.\n"
                                       f"Get it:\n{HOW_TO_GET_CUB}")
        return records, lists

    def _attngan_records(self, text: Path, images: Path) -> tuple[list[Record], dict[str, set[str]]]:
        """The pickles list the dataset (train: Reed's 150 train+val classes, test: his 50)."""
        base = text.parent
        records, lists = [], {}
        for part, coarse in (("train", "trainval"), ("test", "test")):
            path = base / part / "filenames.pickle"
            if not path.is_file():
                continue
            names = read_pickled_names(path)
            lists[coarse] = {n.split("/")[0] for n in names}
            for name in names:
                klass = name.split("/")[0]
                records.append(Record(name, klass, class_label(klass, 0), text / f"{name}.txt",
                                      images / f"{name}.jpg"))
        return records, lists

    def image_split(self, records: list[Record]) -> dict[str, str]:
        if self._meta.is_train is None:
            raise DatasetNotFoundError(f"CUB: data.split=images reads Caltech's CUB_200_2011/images.txt and "
                                       f"train_test_split.txt, not found under {self.root}.\nGet it:\n"
                                       f"{HOW_TO_GET_CUB}")
        self._notes.append("Caltech's train_test_split.txt (classes shared by train and test)")
        return {r.key: "trainval" if self._meta.is_train[r.key] else "test"
                for r in records if r.key in self._meta.is_train}

    def boxes(self, records: list[Record]) -> list | None:
        if self.crop != "bbox":
            return None
        if self._meta.boxes is None:
            log.warning("CUB: data.crop=bbox but CUB_200_2011/bounding_boxes.txt (with images.txt) is not under %s: "
                        "whole images are used", self.root)
            return None
        return [self._meta.boxes.get(r.key) for r in records]

    def cache_name(self) -> str:
        return f"cub-{self.crop}"
