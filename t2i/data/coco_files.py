"""Reading MSCOCO for inpainting from disk (t2i.data.coco's data module reads through
these): the IFT6266 (2017) layout (64x64 images + a pickled caption dict) and the COCO
layout (train2014/ / val2014/ + annotations/captions_<split>2014.json), detected, read into
pools of image files with their captions, and carved into splits."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from t2i.data.base import DatasetNotFoundError, load_python2_pickle
from t2i.data.cache import cached_images
from t2i.data.splits import carve, split_count

log = logging.getLogger("t2i")
IFT6266_PICKLE = "inpainting/dict_key_imgID_value_caps_train_and_valid.pkl"
IFT6266_URL = "http://www-labs.iro.umontreal.ca/~lisa/datasets/mscoco_inpaiting/inpainting.tar.bz2"
COCO_URL = ("data.download=true (python -m t2i.data.download coco --root ROOT), or "
            "https://cocodataset.org/#download (2014 Train/Val images: train2014.zip, val2014.zip; "
            "2014 Train/Val annotations: annotations_trainval2014.zip)")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
NO_CAPTION = ""


# ------------------------------------------------------------------ reading layouts
def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _text(value) -> str:
    return value.decode("utf8", "replace") if isinstance(value, bytes) else str(value)


def read_ift6266_captions(path: Path) -> dict[str, list[str]]:
    """The pickle was written by Python 2: its strings may come back as bytes."""
    raw = load_python2_pickle(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict {{image id: [captions]}}, got {type(raw).__name__}")
    out = {}
    for key, caps in raw.items():
        caps = [caps] if isinstance(caps, (str, bytes)) else caps
        out[Path(_text(key)).stem] = [c for c in (_text(c).strip() for c in caps) if c]
    return out


def read_coco_captions(path: Path) -> dict[str, list[str]]:
    """COCO's captions_<split>2014.json -> {file name: [captions]} (images without any
    annotation are listed with no captions)."""
    with open(path, encoding="utf8") as f:
        data = json.load(f)
    names = {im["id"]: im["file_name"] for im in data.get("images", [])}
    out: dict[str, list[str]] = {name: [] for name in names.values()}
    for ann in data.get("annotations", []):
        name = names.get(ann.get("image_id"))
        text = " ".join(str(ann.get("caption", "")).split())  # stray spaces and newlines
        if name is not None and text:
            out[name].append(text)
    return out


def detect_layout(root: Path, layout: str) -> str:
    if layout not in ("auto", "ift6266", "coco"):
        raise ValueError(f"data.layout must be auto, ift6266 or coco, got {layout!r}")
    if layout != "auto":
        return layout
    if (root / "inpainting" / "train2014").is_dir() or (root / "inpainting" / "val2014").is_dir():
        return "ift6266"
    if (root / "train2014").is_dir() or (root / "val2014").is_dir():
        return "coco"
    raise DatasetNotFoundError(
        f"MSCOCO inpainting: no dataset under data.root={root}. Expected either\n"
        f"  the IFT6266 layout: inpainting/train2014/*.jpg, inpainting/val2014/*.jpg and {IFT6266_PICKLE}\n"
        f"    (get it: {IFT6266_URL}), or\n"
        "  the COCO layout: train2014/*.jpg and/or val2014/*.jpg with annotations/captions_train2014.json /\n"
        f"    annotations/captions_val2014.json (get it: {COCO_URL}).\n"
        "Then run with data.root=<folder that holds them>.")


class Pool:
    """One image folder with each file's captions (an empty list: none found) and,
    once decoded, its readable images (`rows` of the memory-mapped `images`)."""

    def __init__(self, name: str, files: list[Path], captions: list[list[str]]):
        self.name, self.files, self.captions = name, files, captions
        self.images: np.ndarray | None = None

    def decode(self, size: int, cache_dir: Path, cache_name: str) -> int:
        """Decode every file once (cached); drop unreadable ones. Returns how many."""
        self.images, kept = cached_images(self.files, size, cache_dir, cache_name)
        dropped = len(self.files) - len(kept)
        self.files = [self.files[i] for i in kept]
        self.captions = [self.captions[i] for i in kept]
        return dropped


class ImageRows:
    """Rows `index` of a (memory-mapped) uint8 image array, not copied."""

    def __init__(self, array: np.ndarray, index: np.ndarray):
        self.array, self.index = array, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.array[self.index[i]]

    def chunks(self, size: int = 1024):
        for s in range(0, len(self.index), size):
            yield self.array[self.index[s:s + size]]


def _missing(root: Path, names: list[str], how: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(f"MSCOCO inpainting: expected under data.root={root} but missing: "
                                f"{', '.join(names)}.\nGet it: {how}\nThen run with data.root=<folder>.")


def read_pools(root: Path, layout: str, require_captions: bool, counts: dict) -> list[Pool]:
    """The layout's image folders (train first), with captions matched to files."""
    if layout == "ift6266":
        base, how, stem_key = root / "inpainting", IFT6266_URL, True
        folders = [base / s for s in ("train2014", "val2014") if (base / s).is_dir()]
        if not folders:
            raise _missing(root, ["inpainting/train2014/", "inpainting/val2014/"], how)
        table_files = {f.name: base.parent / IFT6266_PICKLE for f in folders}
    else:
        how, stem_key = COCO_URL, False
        folders = [root / s for s in ("train2014", "val2014") if (root / s).is_dir()]
        if not folders:
            raise _missing(root, ["train2014/", "val2014/"], how)
        table_files = {f.name: root / "annotations" / f"captions_{f.name}.json" for f in folders}

    pools, tables = [], {}
    for folder in folders:
        table_path = table_files[folder.name]
        if not table_path.exists():
            if require_captions:
                raise _missing(root, [str(table_path.relative_to(root))], how)
            log.warning("%s not found: every image of %s/ is used without captions", table_path, folder.name)
            table = {}
        else:
            if table_path not in tables:
                tables[table_path] = (read_ift6266_captions if stem_key else read_coco_captions)(table_path)
            table = tables[table_path]
        files = image_files(folder)
        keys = [f.stem if stem_key else f.name for f in files]
        captions = [table.get(k, []) for k in keys]
        on_disk = set(keys)
        if not stem_key:  # captions in a COCO json whose image file is absent
            counts["captions_without_image"] += sum(1 for k, c in table.items() if c and k not in on_disk)
        pools.append(Pool(folder.name, files, captions))
    if stem_key and tables:  # the pickle covers train and val: count once over both folders
        table = next(iter(tables.values()))
        on_disk = {f.stem for p in pools for f in p.files}
        counts["captions_without_image"] += sum(1 for k, c in table.items() if c and k not in on_disk)
    for pool in pools:
        uncaptioned = sum(1 for c in pool.captions if not c)
        counts["images_without_captions"] += uncaptioned
        if require_captions and uncaptioned:
            keep = [i for i, c in enumerate(pool.captions) if c]
            pool.files = [pool.files[i] for i in keep]
            pool.captions = [pool.captions[i] for i in keep]
    return pools


def split_pools(pools: list[Pool], val_size, test_size, seed: int) -> dict[str, tuple[ImageRows, list]]:
    """{split: (images, captions)}: train from the first folder, val and test carved
    (disjoint, by a seeded permutation) from the last, among its readable images."""
    held = pools[-1]
    n = len(held.files)
    n_val, n_test = (split_count(size, n, f"data.{key}", minimum=1, leave_one=False)
                     for key, size in (("val_size", val_size), ("test_size", test_size)))
    need = n_val + n_test + (1 if len(pools) == 1 else 0)
    if n < need:
        raise ValueError(f"MSCOCO inpainting: {held.name}/ has {n} usable images, too few to carve "
                         f"val_size={n_val} and test_size={n_test}"
                         + (" and keep one for training" if len(pools) == 1 else "")
                         + ": lower data.val_size/data.test_size or add images.")
    val, test, rest = carve(n, [n_val, n_test], seed)
    rows = lambda pool, idx: (ImageRows(pool.images, idx), [pool.captions[i] for i in idx])  # noqa: E731
    splits = {"val": rows(held, val), "test": rows(held, test)}
    splits["train"] = rows(held, rest) if len(pools) == 1 else rows(pools[0], np.arange(len(pools[0].files)))
    return splits
