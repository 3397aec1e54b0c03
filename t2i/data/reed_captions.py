"""The Reed et al. (2016) caption reader that CUB (t2i.data.cub) and Oxford-102 Flowers
(t2i.data.flowers) share: records of one caption file per image, Reed's class lists,
class-disjoint (or image) splits, and `BenchmarkCaptions`, the data module both build on.

Splits: `split=classes` (default) is Reed's zero-shot protocol, test classes never seen in
training (Reed's lists, else a seeded class split of the same proportions, logged);
`split=images` is Caltech's `train_test_split.txt` (CUB) or a seeded image split (Flowers).
Val is carved from the training classes: by images (`val_split=images`, default: every
train+val class is trained on, as GAN-CLS did) or by Reed's train/val class lists.

Partial downloads are normal: captions whose image is missing, unreadable images and
empty caption files are skipped and counted in one log line. Images are decoded once
into the memory-mapped cache."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from t2i.data.base import DatasetNotFoundError, find_below, load_python2_pickle
from t2i.data.caption_datamodule import SPLITS, CaptionDataModule, CaptionedImages
from t2i.data.caption_file_reader import decode_part, read_caption_file, read_lines
from t2i.data.download import fetch_dataset
from t2i.data.splits import pick, split_count

log = logging.getLogger("t2i")

REED_CLASS_FILES = {"trainval": "trainvalclasses.txt", "test": "testclasses.txt",
                    "train": "trainclasses.txt", "val": "valclasses.txt"}


@dataclass
class Record:
    """One captioned image: `key` names it in split files ("NNN.Class/name" for CUB,
    "image_NNNNN" for Flowers)."""
    key: str
    klass: str
    label: int
    caption_file: Path
    image_file: Path


# ------------------------------------------------------------------ helpers
def read_class_list(path: Path) -> set[str]:
    return {line.strip() for line in read_lines(path) if line.strip()}


def read_reed_class_lists(*folders: Path, root: Path) -> dict[str, set[str]]:
    """Reed's class split files, looked for next to the captions first, then anywhere
    up to two levels under root. Only the lists found are returned."""
    lists = {}
    for part, name in REED_CLASS_FILES.items():
        path = next((f / name for f in folders if (f / name).is_file()), None) or find_below(root, name)
        if path is not None:
            lists[part] = read_class_list(path)
    return lists


def read_pickled_names(path: Path) -> list[str]:
    """AttnGAN's filenames.pickle: a list of "NNN.Class/name" (Python 2 pickles give bytes)."""
    names = load_python2_pickle(path)
    if not isinstance(names, (list, tuple)):
        raise ValueError(f"{path}: expected a pickled list of 'NNN.Class/name' strings, got {type(names).__name__}")
    return [(n.decode("utf8", "replace") if isinstance(n, bytes) else str(n)).strip() for n in names]


def seeded_class_split(classes: list[str], fraction: float, seed: int) -> set[str]:
    """round(fraction * n) of the classes, drawn by `seed`; at least one, and at least one left."""
    n = min(max(1, round(fraction * len(classes))), max(0, len(classes) - 1))
    return pick(classes, n, seed)


# ------------------------------------------------------------------ module
class BenchmarkCaptions(CaptionDataModule):
    """What CUB and Flowers share: records -> class-disjoint (or image) splits -> images
    decoded once, with 10 captions and the class label (`fields["label"]`) each.
    Subclasses implement `read_records()`."""

    channels = 3
    seed_changes_data = False  # split_seed, not the run's seed, makes the splits
    name = "benchmark"
    download_name = ""  # its entry in t2i.data.download's table
    how_to_get = ""
    layout_help = ""
    test_class_fraction = 0.25  # Reed's proportions, for the seeded split when his lists are absent
    val_class_fraction = 1 / 3

    def __init__(self, split: str = "classes", val_split: str = "images", val_size: int | float = 0.05,
                 split_seed: int = 0, image_size: int = 64, cache_workers: int | None = None,
                 download: bool = False, download_mirror: str | None = None, **kw):
        super().__init__(image_size=image_size, **kw)
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8, got {image_size}")
        if split not in ("classes", "images"):
            raise ValueError(f"data.split must be classes (class-disjoint, Reed's protocol) or images, got {split!r}")
        if val_split not in ("images", "classes"):
            raise ValueError(f"data.val_split must be images or classes, got {val_split!r}")
        if val_split == "classes" and split != "classes":
            raise ValueError("data.val_split=classes needs data.split=classes (an image split has no class lists)")
        split_count(val_size, 10)  # validate now
        self.split, self.val_split, self.val_size, self.split_seed = split, val_split, val_size, split_seed
        self.cache_workers = cache_workers
        # underscored: fetching settings, not part of the evaluators' cache key
        self._download, self._download_mirror = download, download_mirror
        self.class_names: dict[int, str] = {}
        self._stats: dict = {}
        self._notes: list[str] = []
        self._caption_classes: list[str] = []

    @property
    def stats(self) -> dict:
        """What loading skipped and why (counts), and the split sizes."""
        return dict(self._stats)

    # ---------------------------------------------------------- subclass API
    def read_records(self) -> tuple[list[Record], dict[str, set[str]]]:
        """Every captioned image of the layout and Reed's class lists found ({} if none)."""
        raise NotImplementedError

    def image_split(self, records: list[Record]) -> dict[str, str]:
        """split=images: key -> trainval | test."""
        raise NotImplementedError

    def boxes(self, records: list[Record]) -> list | None:
        """Per record, an object box to crop around, or None for none at all."""
        return None

    # ---------------------------------------------------------------- setup
    def prepare_data(self) -> None:
        """data.download=true: fetch, check and lay out what is missing (a no-op once there)."""
        if self._download:
            fetch_dataset(self.download_name, self.root, self._download_mirror)

    def load_splits(self) -> dict[str, CaptionedImages]:
        self.prepare_data()
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"{self.name}: data.root={self.root} is not a folder. Expected "
                                       f"{self.layout_help}.\nGet it:\n{self.how_to_get}")
        self._notes = []
        records, class_lists = self.read_records()
        self._caption_classes = sorted({r.klass for r in records})
        class_lists = self._match_class_names(class_lists)
        counts = Counter()
        present = self._present(records, counts)
        part_of = self._assign(present, class_lists, counts)
        splits = {part: self._load_part(part, [r for r in present if part_of.get(r.key) == part], counts)
                  for part in SPLITS}
        self.class_names = {r.label: r.klass for r in records}
        self._stats = dict(counts)
        self._report(counts)
        if counts["train/images"] == 0:
            raise ValueError(f"{self.name}: no training image under {self.root} ({'; '.join(self._notes)}): "
                             "the training classes have no images on disk; add them or use data.split=images")
        return splits

    def _match_class_names(self, class_lists: dict[str, set[str]]) -> dict[str, set[str]]:
        """Reed's lists spell 15 CUB classes unlike Caltech's folders ("009.Brewers_Blackbird"
        for "009.Brewer_Blackbird"): a listed class is the folder with the same number."""
        by_number = {class_label(c, c): c for c in self._caption_classes}
        matched = {part: {by_number.get(class_label(c, c), c) for c in names} for part, names in class_lists.items()}
        renamed = sum(len(names - matched[part]) for part, names in class_lists.items())
        if renamed:
            self._notes.append(f"{renamed} class-list entries matched to folders by number")
        return matched

    def _present(self, records: list[Record], counts: Counter) -> list[Record]:
        """Records whose image file exists (a missing one's captions are counted as skipped)."""
        present = []
        for r in records:
            if not r.image_file.is_file():
                counts["images_missing"] += 1
                counts["captions_without_image"] += len(read_caption_file(r.caption_file))
            else:
                present.append(r)
        if not present:
            raise DatasetNotFoundError(
                f"{self.name}: {len(records)} caption files but none of their images under data.root={self.root} "
                f"(e.g. {records[0].image_file if records else '-'}). Expected {self.layout_help}.\n"
                f"Get it:\n{self.how_to_get}")
        return present

    def _assign(self, records: list[Record], class_lists: dict[str, set[str]], counts: Counter) -> dict[str, str]:
        """key -> train | val | test (records in no split are counted, unused)."""
        if self.split == "images":
            coarse = self.image_split(records)
        else:
            coarse = self._class_split(records, class_lists)
        trainval = [r for r in records if coarse.get(r.key) == "trainval"]
        part_of = {r.key: "test" for r in records if coarse.get(r.key) == "test"}
        counts["images_in_no_split"] = sum(1 for r in records if r.key not in coarse)
        val_keys = self._val_keys(trainval, class_lists)
        part_of.update({r.key: "val" if r.key in val_keys else "train" for r in trainval})
        return part_of

    def _class_split(self, records: list[Record], class_lists: dict[str, set[str]]) -> dict[str, str]:
        classes = sorted({r.klass for r in records} | {r for part in class_lists.values() for r in part})
        if "test" in class_lists:
            test = class_lists["test"]
            trainval = class_lists.get("trainval", set(classes) - test)
            self._notes.append(f"Reed's class split ({len(trainval)} train+val / {len(test)} test classes)")
        else:
            # every captioned class, images on disk or not: the split does not move with a partial download
            classes = sorted(self._caption_classes or classes)
            test = seeded_class_split(classes, self.test_class_fraction, self.split_seed)
            trainval = set(classes) - test
            self._notes.append(f"no {REED_CLASS_FILES['test']}: seeded class-disjoint split of the {len(classes)} "
                               f"captioned classes, {len(trainval)} train+val / {len(test)} test "
                               f"(split_seed {self.split_seed}): {', '.join(sorted(test)[:5])}, ...")
        overlap = trainval & test
        if overlap:
            raise ValueError(f"{self.name}: classes in both train+val and test lists: {sorted(overlap)[:5]}")
        return {r.key: "test" if r.klass in test else "trainval" for r in records
                if r.klass in test or r.klass in trainval}

    def _val_keys(self, trainval: list[Record], class_lists: dict[str, set[str]]) -> set[str]:
        """Val among the train+val images: Reed's val classes (val_split=classes), else a
        seeded `val_size` of the images."""
        if self.val_split == "classes":
            present = {r.klass for r in trainval}
            if "train" in class_lists and "val" in class_lists:
                val_classes, how = class_lists["val"], "Reed's val classes"
            else:
                val_classes = seeded_class_split(sorted(present), self.val_class_fraction, self.split_seed + 1)
                how = f"seeded val classes (split_seed {self.split_seed})"
            val = {r.key for r in trainval if r.klass in val_classes}
            if val and len(val) < len(trainval):
                self._notes.append(f"val: {how}, {len(present & val_classes)} classes")
                return val
            self._notes.append(f"val: {how} leave train or val without images here: val carved by images instead")
        count = split_count(self.val_size, len(trainval))
        self._notes.append(f"val: {count} train+val images drawn by split_seed {self.split_seed} (same classes as "
                           "train: val monitors fitting, the class-disjoint test split measures generalisation)")
        return pick([r.key for r in trainval], count, self.split_seed)

    def _load_part(self, part: str, records: list[Record], counts: Counter) -> CaptionedImages:
        captions = [read_caption_file(r.caption_file) for r in records]
        counts["empty_caption_files"] += sum(1 for c in captions if not c)
        records = [r for i, r in enumerate(records) if captions[i]]
        captions = [c for c in captions if c]
        labels = torch.tensor([r.label for r in records], dtype=torch.long)
        loaded, unreadable, _ = decode_part([r.image_file for r in records], captions, self.image_size, self.cache_dir,
                                         f"{self.cache_name()}-{part}", workers=self.cache_workers,
                                         boxes=self.boxes(records) if records else None, fields={"label": labels})
        counts["images_unreadable"] += len(unreadable)
        counts["captions_without_image"] += sum(len(captions[i]) for i in unreadable)
        counts[f"{part}/images"] = len(loaded.captions)
        counts[f"{part}/classes"] = len({r.klass for i, r in enumerate(records) if i not in set(unreadable)})
        return loaded

    def cache_name(self) -> str:
        return self.name.lower()

    def _report(self, counts: Counter) -> None:
        skipped = counts["captions_without_image"]
        if skipped or counts["empty_caption_files"]:
            log.warning("%s: %d captions skipped (%d images missing, %d unreadable), %d empty caption files skipped",
                        self.name, skipped, counts["images_missing"], counts["images_unreadable"],
                        counts["empty_caption_files"])
        if counts["images_in_no_split"]:
            log.info("%s: %d captioned images are in no split (unused)", self.name, counts["images_in_no_split"])
        log.info("%s: split=%s; %s", self.name, self.split, "; ".join(self._notes))
        if counts["test/images"] == 0:
            log.warning("%s: the test split has no image on disk (its classes' images are missing): evaluation "
                        "after fit has nothing to compare with; add them or use data.split=images", self.name)
        log.info("%s: %s train / val / test images (%s classes)", self.name,
                 " / ".join(str(counts[f"{p}/images"]) for p in SPLITS),
                 " / ".join(str(counts[f"{p}/classes"]) for p in SPLITS))


def class_label(klass: str, fallback: int) -> int:
    """0-based label from the class folder: "017.Cardinal" -> 16, "class_00077" -> 76."""
    digits = klass.split(".")[0].removeprefix("class_")
    return int(digits) - 1 if digits.isdigit() else fallback


def records_from_folders(text_dir: Path, image_of) -> list[Record]:
    """One record per caption file `<class>/<name>.txt`; `image_of(class, name)` -> image path."""
    class_dirs = sorted(p for p in text_dir.iterdir() if p.is_dir())
    records = []
    for index, class_dir in enumerate(class_dirs):
        label = class_label(class_dir.name, index)
        for txt in sorted(class_dir.glob("*.txt")):
            records.append(Record(f"{class_dir.name}/{txt.stem}", class_dir.name, label, txt,
                                  image_of(class_dir.name, txt.stem)))
    return records
