"""Any folder of captioned images (`data=captioned_folder data.root=DIR`), in the two
layouts people already have (`data.layout`: auto | imagefolder | sidecar):

- Hugging Face `imagefolder` (what `datasets` and diffusers' text-to-image training read):
  images anywhere under root plus `metadata.jsonl` or `metadata.csv` with a `file_name`
  column (relative to the metadata file's folder) and a caption column (`text` by default,
  `data.caption_column=...`). Several captions per image: a JSON list in the column, or
  repeated rows. An optional split level: `train/`, `test/`, `validation/` (each with its
  own metadata file, or one file naming `train/x.jpg`).
- sidecar files: `photo.jpg` next to `photo.txt`, one caption per line (in split folders
  or not).

Without split folders the split is a seeded draw of images (`data.val_size`,
`data.test_size`, `data.split_seed`); with `train/` only, val and test are drawn from it.
Records without an image, unreadable images, images over `data.max_image_pixels` and
empty captions are skipped, counted in `stats` and the first few named in one warning;
16-bit, float and transparent images are converted by their values and named in a log
line (t2i.data.decode). Images are decoded once into the
memory-mapped cache, captions go through the shared text pipeline (CaptionDataModule),
so the matching evaluator, R-precision and captions.png work as for Flowers or Flickr."""
from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from t2i.data.base import DatasetNotFoundError
from t2i.data.caption_datamodule import SPLITS, CaptionDataModule, CaptionedImages
from t2i.data.caption_file_reader import decode_part, read_caption_file, read_lines
from t2i.data.decode import MAX_IMAGE_PIXELS
from t2i.data.splits import pick, split_count

log = logging.getLogger("t2i")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
METADATA_FILES = ("metadata.jsonl", "metadata.csv")
# folder names `datasets` reads as splits, mapped to ours
SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "testing": "test",
                 "validation": "val", "valid": "val", "val": "val", "dev": "val"}
LAYOUT_HELP = ("imagefolder: DIR/[train|test|validation/]metadata.jsonl (or .csv) with file_name and a caption "
               "column (data.caption_column, default text) next to the images; or sidecar: DIR/**/photo.jpg with "
               "DIR/**/photo.txt (one caption per line)")
SHOW_BAD = 5  # bad records named in the warning


@dataclass
class Bad:
    """A skipped record: what it was and why."""
    name: str
    why: str


@dataclass
class Folder:
    """What a layout says: captions per image file (in file order), the split folder of
    each image where there is one, and the records skipped while reading."""
    captions: dict[Path, list[str]]
    split: dict[Path, str]
    bad: list[Bad]
    layout: str


# ---------------------------------------------------------------- layouts
def split_of(path: Path, root: Path) -> str | None:
    """The split named by the first folder under root (train/, test/, validation/), if any."""
    parts = path.relative_to(root).parts
    return SPLIT_FOLDERS.get(parts[0].lower()) if len(parts) > 1 else None


def caption_list(value) -> list[str]:
    """A caption cell: a string, a list of strings, or a JSON list written into a CSV cell."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            value = json.loads(value)
        except ValueError:
            pass  # a caption that happens to be bracketed
    values = value if isinstance(value, (list, tuple)) else [value]
    return [" ".join(str(v).split()) for v in values if v is not None and str(v).strip()]


def metadata_rows(path: Path) -> list[tuple[int, dict | None]]:
    """(line number, row) of a metadata.jsonl / .csv; None for a line that is not a record."""
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(read_lines(path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            rows.append((number, row if isinstance(row, dict) else None))
        return rows
    reader = csv.DictReader(read_lines(path))
    return [(number, row) for number, row in enumerate(reader, start=2)]


def read_imagefolder(root: Path, caption_column: str, image_column: str = "file_name") -> Folder:
    files = sorted(p for name in METADATA_FILES for p in root.rglob(name))
    captions: dict[Path, list[str]] = defaultdict(list)
    bad: list[Bad] = []
    for meta in files:
        rows = metadata_rows(meta)
        columns = set().union(*(row for _, row in rows if row))
        if rows and caption_column not in columns:
            raise ValueError(f"{meta}: no caption column {caption_column!r} (columns: {sorted(columns)}); "
                             f"set data.caption_column=<one of them>")
        for number, row in rows:
            where = f"{meta.relative_to(root)}:{number}"
            if row is None or not str(row.get(image_column) or "").strip():
                bad.append(Bad(where, "not a record"))  # not JSON, or no file_name
                continue
            image = meta.parent / str(row[image_column]).strip()
            texts = caption_list(row.get(caption_column))
            if not texts:
                bad.append(Bad(f"{where} ({row[image_column]})", "empty caption"))
            captions[image].extend(texts)
    return Folder(dict(captions), {p: s for p in captions if (s := split_of(p, root))}, bad, "imagefolder")


def read_sidecar(root: Path) -> Folder:
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    with_image = {p.with_suffix("") for p in images}
    captions, bad = {}, []
    for image in images:
        text = image.with_suffix(".txt")
        if not text.is_file():
            bad.append(Bad(str(image.relative_to(root)), "no caption file"))
            continue
        captions[image] = read_caption_file(text)
    for text in sorted(root.rglob("*.txt")):
        if text.with_suffix("") not in with_image:
            bad.append(Bad(str(text.relative_to(root)), "no image file"))
    return Folder(captions, {p: s for p in captions if (s := split_of(p, root))}, bad, "sidecar")


def detect_layout(root: Path, layout: str) -> str:
    if layout != "auto":
        return layout
    if any(next(root.rglob(name), None) is not None for name in METADATA_FILES):
        return "imagefolder"
    if next(root.rglob("*.txt"), None) is not None:
        return "sidecar"
    raise DatasetNotFoundError(f"captioned_folder: neither metadata.jsonl / metadata.csv nor .txt caption files "
                               f"under data.root={root}. Expected {LAYOUT_HELP}.")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "folder"


# ---------------------------------------------------------------- module
class CaptionedFolder(CaptionDataModule):
    """A folder of your own captioned images: RGB, cached at image_size, any number of
    captions per image (one drawn per epoch)."""

    channels = 3
    seed_changes_data = False  # split_seed, not the run's seed, makes the splits

    def __init__(self, layout: str = "auto", caption_column: str = "text", image_column: str = "file_name",
                 name: str | None = None, val_size: int | float = 0.05, test_size: int | float = 0.1,
                 split_seed: int = 0, image_size: int = 64, cache_workers: int | None = None,
                 max_image_pixels: int = MAX_IMAGE_PIXELS, **kw):
        super().__init__(image_size=image_size, **kw)
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8, got {image_size}")
        if layout not in ("auto", "imagefolder", "sidecar"):
            raise ValueError(f"data.layout must be auto, imagefolder or sidecar, got {layout!r}")
        for key, size in (("val_size", val_size), ("test_size", test_size)):
            split_count(size, 10, f"data.{key}")  # validate now
        self.layout, self.caption_column, self.image_column = layout, caption_column, image_column
        self.val_size, self.test_size, self.split_seed = val_size, test_size, split_seed
        if max_image_pixels < 1:
            raise ValueError(f"data.max_image_pixels must be >= 1, got {max_image_pixels}")
        self.cache_workers, self.max_image_pixels = cache_workers, max_image_pixels
        # names the cached evaluators and metric labels (domain:<name>-matching) and the model card
        self.dataset_name = slug(name or self.root.name)
        self._stats: dict = {}
        self.bad_records: list[Bad] = []
        self.converted: list[Bad] = []  # images decoded with a note (16-bit scaled, alpha on white)

    @property
    def stats(self) -> dict:
        """What loading skipped and why (counts), and the split sizes."""
        return dict(self._stats)

    def read(self) -> Folder:
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"captioned_folder: data.root={self.root} is not a folder. "
                                       f"Expected {LAYOUT_HELP}.")
        layout = detect_layout(self.root, self.layout)
        if layout == "imagefolder":
            return read_imagefolder(self.root, self.caption_column, self.image_column)
        return read_sidecar(self.root)

    def load_splits(self) -> dict[str, CaptionedImages]:
        folder = self.read()
        bad = list(folder.bad)
        usable = []
        for image, texts in folder.captions.items():
            if not image.is_file():
                bad.append(Bad(str(image.relative_to(self.root)) if image.is_relative_to(self.root) else str(image),
                               "image not found"))
            elif not texts:
                if folder.layout == "sidecar":  # imagefolder rows already named each empty caption
                    bad.append(Bad(str(image.relative_to(self.root)), "empty caption"))
            else:
                usable.append(image)
        if not usable:
            raise DatasetNotFoundError(f"captioned_folder: no image with a caption under data.root={self.root} "
                                       f"({folder.layout} layout; {len(bad)} records skipped"
                                       + (f", e.g. {bad[0].name}: {bad[0].why}" if bad else "")
                                       + f"). Expected {LAYOUT_HELP}.")
        part_of, notes = self.assign(usable, folder.split)
        splits, self.converted = {}, []
        for part in SPLITS:
            images = [p for p in usable if part_of[p] == part]
            splits[part] = self._load_part(part, images, folder.captions, bad)
        counts = Counter(b.why.replace(" ", "_") for b in bad)  # image_not_found, unreadable_image, ...
        self._stats = {**counts, "skipped": len(bad), "converted": len(self.converted),
                       **{f"{p}/images": len(splits[p].images) for p in SPLITS}}
        self.bad_records = bad
        self._report(folder.layout, bad, notes)
        if not len(splits["train"].images):
            raise ValueError(f"captioned_folder: no readable training image under {self.root}")
        return splits

    def assign(self, images: list[Path], given: dict[Path, str]) -> tuple[dict[Path, str], list[str]]:
        """image -> train | val | test: the split folders where present, the rest drawn by split_seed
        from the training images (test first, then val)."""
        part_of = {p: given.get(p, "train") for p in images}
        notes = []
        have = set(part_of.values())
        if have != {"train"} or given:
            notes.append("split folders: " + ", ".join(f"{p} {sum(v == p for v in part_of.values())}"
                                                       for p in SPLITS if p in have))
        for part, size in (("test", self.test_size), ("val", self.val_size)):
            if part in have:
                continue
            pool = [str(p) for p in images if part_of[p] == "train"]
            count = split_count(size, len(pool), f"data.{part}_size")
            drawn = pick(pool, count, self.split_seed + (part == "val"))
            part_of.update({p: part for p in images if str(p) in drawn})
            notes.append(f"{part}: {count} images drawn from train by split_seed {self.split_seed}")
        return part_of, notes

    def _load_part(self, part: str, images: list[Path], captions: dict[Path, list[str]],
                   bad: list[Bad]) -> CaptionedImages:
        loaded, skipped, converted = decode_part(images, [captions[p] for p in images], self.image_size,
                                                 self.cache_dir, f"folder-{self.dataset_name}-{part}",
                                                 workers=self.cache_workers, max_pixels=self.max_image_pixels)
        for i, why in skipped.items():
            name = str(images[i].relative_to(self.root))
            # a category for the counts, the detail (the size and the limit) in the name
            bad.append(Bad(f"{name} ({why})", "image too large") if why.startswith("too large")
                       else Bad(name, "unreadable image"))
        self.converted.extend(Bad(str(images[i].relative_to(self.root)), how) for i, how in converted.items())
        if not loaded.captions:
            log.warning("captioned_folder: the %s split has no usable image", part)
        return loaded

    def _report(self, layout: str, bad: list[Bad], notes: list[str]) -> None:
        if bad:
            counts = Counter(b.why for b in bad)
            named = "; ".join(f"{b.name}: {b.why}" for b in bad[:SHOW_BAD])
            log.warning("captioned_folder: %d records skipped (%s), e.g. %s%s", len(bad),
                        ", ".join(f"{n} {why}" for why, n in counts.most_common()), named,
                        f" (+{len(bad) - SHOW_BAD} more)" if len(bad) > SHOW_BAD else "")
        if self.converted:
            log.info("captioned_folder: %d images converted to 8-bit RGB, e.g. %s", len(self.converted),
                     "; ".join(f"{c.name}: {c.why}" for c in self.converted[:SHOW_BAD]))
        log.info("captioned_folder %s: %s layout under %s; %s; %d / %d / %d train / val / test images",
                 self.dataset_name, layout, self.root, "; ".join(notes), self._stats["train/images"],
                 self._stats["val/images"], self._stats["test/images"])
