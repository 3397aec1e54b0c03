"""Flickr8k and Flickr30k captions in the layouts users have, detected under data.root:

Flickr8k
- official: `Flicker8k_Dataset/` + `Flickr8k_text/Flickr8k.token.txt` (`name.jpg#k<TAB>caption`)
  with `Flickr_8k.{train,dev,test}Images.txt` (the official split);
- Karpathy's `dataset_flickr8k.json` (carries the standard split) + the images;
- Kaggle's `captions.txt` (CSV `image,caption`) + `Images/`.
Flickr30k
- Karpathy's `dataset_flickr30k.json` (the standard split; `restval` counts as train);
- `results_20130124.token` (`name.jpg#k<TAB>caption`) + `flickr30k-images/`;
- Kaggle's `results.csv` (`image_name| comment_number| comment`) + `flickr30k_images/`.
Layouts without a split get a seeded random one (data.val_size / data.test_size images).

Each image has ~5 captions; each epoch samples one per image. Images are decoded once
(resized, centre-cropped) into a memory-mapped uint8 cache. Captions whose image is
missing or unreadable are skipped and counted, never fatal."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from t2i.data.base import DatasetNotFoundError
from t2i.data.caption_datamodule import SPLITS, CaptionDataModule, CaptionedImages
from t2i.data.caption_file_reader import decode_part
from t2i.data.download import fetch_dataset
from t2i.data.flickr_files import (
    CAPTION_FILES,
    HOW_TO_GET,
    Annotations,
    detect_variant,
    find_caption_files,
    find_image_dir,
    parse,
    parse_karpathy_json,
    parse_results_csv,
    parse_token_file,
    random_split,
    read_split_files,
)

log = logging.getLogger("t2i")
__all__ = ["FlickrCaptions", "parse_results_csv", "parse_token_file", "random_split"]


# ----------------------------------------------------------------- module
class FlickrCaptions(CaptionDataModule):
    """Flickr8k / Flickr30k: RGB images (cached at image_size) with 5 captions each."""

    channels = 3
    seed_changes_data = False  # split_seed, not the run's seed, makes the splits

    def __init__(self, variant: str = "auto", image_size: int = 64, val_size: int = 1000, test_size: int = 1000,
                 split_seed: int = 0, cache_workers: int | None = None, download: bool = False,
                 download_mirror: str | None = None, **kw):
        super().__init__(image_size=image_size, **kw)
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8, got {image_size}")
        if variant not in ("auto", "8k", "30k"):
            raise ValueError(f"data.variant must be auto, 8k or 30k, got {variant!r}")
        if val_size < 0 or test_size < 0:
            raise ValueError(f"data.val_size and data.test_size must be >= 0, got {val_size}, {test_size}")
        self.variant, self.val_size, self.test_size, self.split_seed = variant, val_size, test_size, split_seed
        self.cache_workers = cache_workers
        # underscored: fetching settings, not part of the evaluators' cache key
        self._download, self._download_mirror = download, download_mirror
        self._stats: dict = {}

    @property
    def stats(self) -> dict:
        """What loading skipped and why (counts), on top of `text_stats`."""
        return dict(self._stats)

    def annotations(self) -> tuple[str, str, Path, Annotations]:
        """(variant, layout kind, caption file, annotations with a split for every image)."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"Flickr: data.root={self.root} is not a folder.\n"
                                       f"Get Flickr8k: {HOW_TO_GET['8k']}\nGet Flickr30k: {HOW_TO_GET['30k']}")
        variant = detect_variant(self.root, self.variant)
        files = find_caption_files(self.root, variant)
        if not files:
            raise DatasetNotFoundError(f"Flickr{variant}: none of {[n for _, n in CAPTION_FILES[variant]]} under "
                                       f"data.root={self.root}.\nGet it: {HOW_TO_GET[variant]}")
        kind, path = files[0]
        ann = parse(kind, path)
        if ann.split is None:
            ann.split = self._split_for(variant, path, ann, files)
        return variant, kind, path, ann

    def _split_for(self, variant: str, path: Path, ann: Annotations, files) -> dict[str, str]:
        """Official split files, else a Karpathy JSON's split, else a seeded random one."""
        official = read_split_files(path.parent) if variant == "8k" else None
        if official is not None:
            ann.notes.append(f"official split from {path.parent}")
            return official
        karpathy = [p for kind, p in files if kind == "karpathy"]
        if karpathy:
            ann.notes.append(f"split from {karpathy[0].name}")
            return parse_karpathy_json(karpathy[0]).split
        ann.notes.append(f"no split files: seeded random split (val {self.val_size}, test {self.test_size} "
                         f"images, split_seed {self.split_seed})")
        return random_split(list(ann.captions), self.val_size, self.test_size, self.split_seed)

    def prepare_data(self) -> None:
        """data.download=true: Flickr8k is fetched (auto, 8k); Flickr30k's message says where to request it."""
        if self._download:
            fetch_dataset("flickr30k" if self.variant == "30k" else "flickr8k", self.root, self._download_mirror)

    def load_splits(self) -> dict[str, CaptionedImages]:
        self.prepare_data()
        variant, kind, path, ann = self.annotations()
        self.dataset_name = f"flickr{variant}"  # names the cached evaluators and metric labels
        names = list(ann.captions)
        image_dir = find_image_dir(self.root, variant, names, path.parent)
        counts = Counter()
        counts["bad_lines"] = ann.bad_lines
        unsplit = [n for n in names if n not in ann.split]
        counts["images_in_no_split"] = len(unsplit)
        log.info("Flickr%s: %s layout (%s), images in %s; %s", variant, kind, path, image_dir, "; ".join(ann.notes))
        splits = {}
        for part in SPLITS:
            part_names = [n for n in names if ann.split.get(n) == part]
            splits[part] = self._load_part(variant, part, part_names, ann.captions, image_dir, counts)
        self._stats = dict(counts)
        self._report(variant, counts)
        return splits

    def _load_part(self, variant: str, part: str, names: list[str], captions: dict[str, list[str]],
                   image_dir: Path, counts: Counter) -> CaptionedImages:
        present = [n for n in names if (image_dir / n).is_file()]
        missing = len(names) - len(present)
        counts["images_missing"] += missing
        counts["captions_without_image"] += sum(len(captions[n]) for n in names if not (image_dir / n).is_file())
        loaded, unreadable, _ = decode_part([image_dir / n for n in present], [captions[n] for n in present],
                                         self.image_size, self.cache_dir, f"flickr{variant}-{part}",
                                         workers=self.cache_workers)
        counts["images_unreadable"] += len(unreadable)
        counts["captions_without_image"] += sum(len(captions[present[i]]) for i in unreadable)
        counts[f"{part}/images"] = len(loaded.captions)
        if not loaded.captions:
            log.warning("Flickr%s %s split: no usable image (of %d listed)", variant, part, len(names))
        return loaded

    def _report(self, variant: str, counts: Counter) -> None:
        skipped = counts["captions_without_image"]
        if skipped:
            log.warning("Flickr%s: %d captions skipped: %d images missing, %d unreadable", variant, skipped,
                        counts["images_missing"], counts["images_unreadable"])
        if counts["bad_lines"]:
            log.warning("Flickr%s: %d malformed caption lines skipped", variant, counts["bad_lines"])
        if counts["images_in_no_split"]:
            log.info("Flickr%s: %d captioned images are in no split file (unused)", variant,
                     counts["images_in_no_split"])
        log.info("Flickr%s: %d / %d / %d train / val / test images", variant,
                 counts["train/images"], counts["val/images"], counts["test/images"])
