"""Reading Flickr8k / Flickr30k caption files in the layouts users have (t2i.data.flickr's
data module reads through these): the token files, Karpathy's JSON, Kaggle's CSVs, the
official split files, and finding the caption files and image folder under data.root."""
from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from t2i.data.base import DatasetNotFoundError, find_below
from t2i.data.caption_file_reader import read_lines
from t2i.data.splits import carve

HOW_TO_GET = {
    "8k": "data.download=true (python -m t2i.data.download flickr8k --root ROOT), or "
          "Flickr8k_Dataset.zip + Flickr8k_text.zip (https://github.com/jbrownlee/Datasets/releases/tag/Flickr8k, "
          "the official files) extracted side by side; or Kaggle 'adityajn105/flickr8k' (captions.txt + Images/); "
          "Karpathy's split: dataset_flickr8k.json from "
          "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip",
    "30k": "flickr30k-images/ + results_20130124.token (https://shannon.cs.illinois.edu/DenotationGraph/); or "
           "Kaggle 'hsankesara/flickr-image-dataset' (flickr30k_images/ + results.csv); Karpathy's split: "
           "dataset_flickr30k.json from https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip",
}
# Caption files per variant, in order of preference (layouts carrying a split first).
CAPTION_FILES = {
    "8k": [("token", "Flickr8k.token.txt"), ("karpathy", "dataset_flickr8k.json"), ("csv", "captions.txt")],
    "30k": [("karpathy", "dataset_flickr30k.json"), ("token", "results_20130124.token"),
            ("token", "results.token"), ("csv", "results.csv")],
}
IMAGE_DIRS = {
    "8k": ["Flicker8k_Dataset", "Flickr8k_Dataset", "Flicker8k_Dataset/Flicker8k_Dataset",
           "Flickr8k_Dataset/Flicker8k_Dataset", "Images", "images"],
    "30k": ["flickr30k-images", "flickr30k_images", "flickr30k_images/flickr30k_images", "Images", "images"],
}
SPLIT_FILES_8K = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
                  "test": "Flickr_8k.testImages.txt"}
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass
class Annotations:
    """What a caption file says: captions per image name (file order) and, where the
    layout has one, the split of each image."""
    captions: dict[str, list[str]]
    split: dict[str, str] | None = None
    bad_lines: int = 0
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------- parsers
def parse_token_file(path: Path) -> Annotations:
    """`name.jpg#k<TAB>caption` lines (Flickr8k.token.txt, results_20130124.token)."""
    captions, bad = defaultdict(list), 0
    for line in read_lines(path):
        if not line.strip():
            continue
        key, sep, text = line.partition("\t")
        if not sep:  # a tab lost to an editor: "name.jpg#k caption"
            key, _, text = line.strip().partition(" ")
        name = key.strip().rsplit("#", 1)[0]
        if not name or not text.strip():
            bad += 1
            continue
        captions[name].append(text)
    return Annotations(dict(captions), bad_lines=bad)


_NUMBER_THEN_TEXT = re.compile(r"^\s*(\d+)\s+(.*)$")


def parse_results_csv(path: Path) -> Annotations:
    """Kaggle Flickr30k `results.csv`: `image_name| comment_number| comment`. One real
    line lost its second separator ("x.jpg| 4 A dog ..."): recovered, not dropped."""
    captions, bad = defaultdict(list), 0
    lines = read_lines(path)
    if lines and lines[0].replace(" ", "").lower().startswith("image_name|"):
        lines = lines[1:]
    for line in lines:
        if not line.strip():
            continue
        parts = line.split("|", 2)
        text = None
        if len(parts) == 3:
            text = parts[2]
        elif len(parts) == 2 and (m := _NUMBER_THEN_TEXT.match(parts[1])):
            text = m.group(2)
        if text is None or not parts[0].strip() or not text.strip():
            bad += 1
            continue
        captions[parts[0].strip()].append(text)
    return Annotations(dict(captions), bad_lines=bad)


def parse_captions_csv(path: Path) -> Annotations:
    """Kaggle Flickr8k `captions.txt`: CSV `image,caption` (captions with commas quoted;
    unquoted extra commas are joined back into the caption)."""
    captions, bad = defaultdict(list), 0
    rows = csv.reader(read_lines(path))
    for i, row in enumerate(rows):
        if i == 0 and row and row[0].strip().lower() == "image":
            continue
        if len(row) < 2 or not row[0].strip() or not ",".join(row[1:]).strip():
            bad += bool(row)
            continue
        captions[row[0].strip()].append(",".join(row[1:]))
    return Annotations(dict(captions), bad_lines=bad)


def parse_karpathy_json(path: Path) -> Annotations:
    """Karpathy's `dataset_flickr{8k,30k}.json`: images with filename, split
    (train|val|test|restval; restval counts as train) and sentences (raw, tokens)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
        images = data["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetNotFoundError(f"{path} is not a Karpathy caption JSON ({err}): expected "
                                   '{"images": [{"filename", "split", "sentences": [{"raw", "tokens"}]}]}') from err
    captions, split, bad = {}, {}, 0
    for entry in images:
        name, part = entry.get("filename"), KARPATHY_SPLITS.get(entry.get("split", ""))
        if not name or part is None:
            bad += 1
            continue
        texts = [s.get("raw") or " ".join(s.get("tokens") or []) for s in entry.get("sentences") or []]
        captions[name] = [t for t in texts if t]
        split[name] = part
    return Annotations(captions, split, bad_lines=bad)


PARSERS = {"token": parse_token_file, "csv": None, "karpathy": parse_karpathy_json}


def parse(kind: str, path: Path) -> Annotations:
    if kind == "csv":
        return parse_results_csv(path) if path.name == "results.csv" else parse_captions_csv(path)
    return PARSERS[kind](path)


def read_split_files(folder: Path) -> dict[str, str] | None:
    """The official Flickr8k split (Flickr_8k.{train,dev,test}Images.txt), if present."""
    paths = {part: folder / name for part, name in SPLIT_FILES_8K.items()}
    if not all(p.exists() for p in paths.values()):
        return None
    split = {}
    for part, p in paths.items():
        for line in read_lines(p):
            if line.strip():
                split[line.strip()] = part
    return split


def random_split(names: list[str], val_size: int, test_size: int, seed: int) -> dict[str, str]:
    """Seeded split by image (fixed by data.split_seed, not the run's seed, so the test
    images never change between runs)."""
    names = sorted(names)
    if val_size + test_size >= len(names):
        # tiny folders: keep at least one image per split where possible
        val_size = test_size = max(0, min(val_size, test_size, (len(names) - 1) // 3))
    parts = carve(len(names), [test_size, val_size], seed)
    return {names[i]: part for part, index in zip(("test", "val", "train"), parts) for i in index}


# ----------------------------------------------------------------- layout
def find_caption_files(root: Path, variant: str) -> list[tuple[str, Path]]:
    return [(kind, p) for kind, name in CAPTION_FILES[variant] if (p := find_below(root, name)) is not None]


def find_image_dir(root: Path, variant: str, names: list[str], near: Path) -> Path:
    """The folder holding most of the captioned images (probing up to 50 names)."""
    probe = names[:: max(1, len(names) // 50)][:50]
    candidates = [root / d for d in IMAGE_DIRS[variant]] + [near, near.parent, root]
    scored = [(sum((d / n).is_file() for n in probe), -i, d) for i, d in enumerate(candidates) if d.is_dir()]
    best = max(scored, default=(0, 0, None))
    if best[0] == 0:
        raise DatasetNotFoundError(
            f"Flickr{variant}: captions found but none of their images under data.root={root} (looked in "
            f"{', '.join(IMAGE_DIRS[variant])}).\nGet it: {HOW_TO_GET[variant]}")
    return best[2]


def detect_variant(root: Path, variant: str) -> str:
    if variant in ("8k", "30k"):
        return variant
    if variant != "auto":
        raise ValueError(f"data.variant must be auto, 8k or 30k, got {variant!r}")
    found = [v for v in ("8k", "30k") if find_caption_files(root, v)]
    if len(found) == 1:
        return found[0]
    if len(found) == 2:
        raise ValueError(f"both Flickr8k and Flickr30k caption files are under data.root={root}: "
                         "pick one with data.variant=8k or data.variant=30k")
    raise DatasetNotFoundError(
        f"Flickr: no caption file under data.root={root}. Expected one of "
        f"{', '.join(n for v in CAPTION_FILES.values() for _, n in v)} (at the root or one or two folders "
        f"below) next to the images.\nGet Flickr8k: {HOW_TO_GET['8k']}\nGet Flickr30k: {HOW_TO_GET['30k']}")
