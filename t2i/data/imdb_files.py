"""Reading IMDB reviews from disk (t2i.data.imdb's data module reads through these): the
aclImdb folder layout (`<id>_<rating>.txt` under {train,test}/{pos,neg}) and the Kaggle
CSV form (`review,sentiment`), with the filter that skips and counts bad files and rows."""
from __future__ import annotations

import csv
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from t2i.data.base import DatasetNotFoundError
from t2i.text import tokenize

ACL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ACL_LABELS = {"neg": 0, "pos": 1}
CSV_LABELS = {"positive": 1, "pos": 1, "1": 1, "negative": 0, "neg": 0, "0": 0}
_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")  # <id>_<rating>.txt, rating 1..10
HOW_TO_GET = (f"download=true (or python -m t2i.data.download imdb --root ROOT) fetches {ACL_URL} (84 MB) "
              "where internet exists; or extract that tarball "
              "into ROOT (giving ROOT/aclImdb/), or put Kaggle's 'IMDB Dataset.csv' (columns review,sentiment) "
              "in ROOT")


@dataclass
class Review:
    tokens: list[str]
    label: int  # 1 positive, 0 negative


# ------------------------------------------------------------------ reading
def decode(raw: bytes) -> str:
    """Reviews are UTF-8; a stray byte becomes U+FFFD instead of stopping the run."""
    return raw.decode("utf-8", errors="replace")


def rating_of(name: str) -> int | None:
    """The star rating in an aclImdb file name, or None when the name is not <id>_<1..10>.txt."""
    match = _FILE_NAME.match(name)
    if not match or not 1 <= int(match.group(2)) <= 10:
        return None
    return int(match.group(2))


def acl_folder(root: Path) -> Path | None:
    """ROOT/aclImdb, or ROOT itself when data.root points into the aclImdb folder. One
    split is enough: evaluating a checkpoint (vocabulary stored in it) reads only test/."""
    for folder in (root / "aclImdb", root):
        if (folder / "train").is_dir() or (folder / "test").is_dir():
            return folder
    return None


def find_csv(root: Path) -> Path | None:
    """The Kaggle CSV under ROOT: 'IMDB Dataset.csv' first, else any CSV whose header
    is review,sentiment."""
    preferred = root / "IMDB Dataset.csv"
    if preferred.is_file():
        return preferred
    for path in sorted(root.glob("*.csv")) if root.is_dir() else []:
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                header = [h.strip().lower() for h in next(csv.reader(f), [])]
        except OSError:
            continue
        if {"review", "sentiment"} <= set(header):
            return path
    return None


def list_acl_files(folder: Path, split: str) -> list[tuple[Path, int]]:
    """(path, label) of every review file of a split, in a reproducible order."""
    files = []
    for name, label in ACL_LABELS.items():
        files += [(p, label) for p in sorted((folder / split / name).glob("*.txt"))]
    return files


class ReviewFilter:
    """Tokenises reviews, applies the length policy and counts what it skipped and why."""

    def __init__(self, max_len: int, length_policy: str, truncate_side: str):
        self.max_len, self.length_policy, self.truncate_side = max_len, length_policy, truncate_side
        self.skipped: Counter = Counter()
        self.replaced_bytes = 0

    def __call__(self, text: str, label: int) -> Review | None:
        tokens = tokenize(text)
        if not tokens:
            self.skipped["empty"] += 1
            return None
        if len(tokens) > self.max_len:
            if self.length_policy == "filter":  # as the source report: drop reviews over max_len words
                self.skipped[f"longer than max_len={self.max_len}"] += 1
                return None
            # keep the start (head) or the end (tail, where reviews tend to give their verdict)
            tokens = tokens[: self.max_len] if self.truncate_side == "head" else tokens[-self.max_len:]
        return Review(tokens, label)

    def from_file(self, path: Path, label: int) -> Review | None:
        if rating_of(path.name) is None:
            self.skipped["name not <id>_<rating>.txt"] += 1
            return None
        try:
            raw = path.read_bytes()
        except OSError:
            self.skipped["unreadable"] += 1
            return None
        text = decode(raw)
        self.replaced_bytes += text.count("\ufffd") - raw.count("\ufffd".encode())
        return self(text, label)


def read_acl_split(files: Sequence[tuple[Path, int]], keep: ReviewFilter, limit: int | None,
                   rng: np.random.Generator) -> list[Review]:
    """Reviews of one split; with `limit`, a random `limit` of them (files are read in a
    seeded random order until enough good ones are found, so only those are read)."""
    order = rng.permutation(len(files)) if limit is not None else range(len(files))
    reviews = []
    for i in order:
        review = keep.from_file(*files[i])
        if review is not None:
            reviews.append(review)
            if limit is not None and len(reviews) >= limit:
                break
    return reviews


def read_csv_rows(path: Path, keep: ReviewFilter) -> list[Review]:
    """Every good row of the Kaggle CSV; rows with an unknown sentiment, a missing field
    or an empty review are skipped and counted."""
    csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))  # a few reviews are very long
    reviews = []
    with open(path, "rb") as f:
        lines = (decode(line) for line in f)
        reader = csv.DictReader(lines)
        fields = {h.strip().lower(): h for h in reader.fieldnames or []}
        if not {"review", "sentiment"} <= set(fields):
            raise DatasetNotFoundError(f"{path}: expected a 'review,sentiment' header, got {reader.fieldnames}")
        for row in reader:
            text, sentiment = row.get(fields["review"]), row.get(fields["sentiment"])
            label = CSV_LABELS.get(str(sentiment).strip().lower()) if sentiment is not None else None
            if text is None or label is None:
                keep.skipped["bad CSV row (missing field or unknown sentiment)"] += 1
                continue
            review = keep(text, label)
            if review is not None:
                reviews.append(review)
    return reviews
