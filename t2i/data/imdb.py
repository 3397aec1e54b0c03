"""IMDB movie reviews (Maas et al. 2011, the Large Movie Review Dataset) for binary
sentiment, read from the aclImdb folder layout or from the Kaggle CSV form.

aclImdb:  ROOT/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt  (25,000 + 25,000 reviews)
CSV:      ROOT/<name>.csv with a `review,sentiment` header ("IMDB Dataset.csv", 50,000
          rows, sentiment positive/negative, pos/neg or 1/0); it has no official test
          split, so `csv_test_fraction` of its rows become the test split.

Reviews go through the shared text pipeline (`t2i.text`: `<br />` removed, lower case,
vocabulary of the `vocab_size` most frequent training words). Bad files (unreadable,
empty, a name without a rating) and bad CSV rows are skipped and counted, never fatal.
Batches hold `tokens` (B, L) padded with 0, `length` (B,) and `label` (B,) 1 = positive;
batches are bucketed by length so little time goes into padding."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from t2i.data.base import BaseDataModule, DatasetNotFoundError, EpochSeededSampler
from t2i.data.download import fetch_dataset
from t2i.data.imdb_files import (
    HOW_TO_GET,
    Review,
    ReviewFilter,
    acl_folder,
    find_csv,
    list_acl_files,
    read_acl_split,
    read_csv_rows,
)
from t2i.data.splits import carve
from t2i.tensors import derived_seed
from t2i.text import Vocabulary

log = logging.getLogger("t2i")
__all__ = ["HOW_TO_GET", "Review", "acl_folder", "find_csv", "list_acl_files", "ReviewFilter", "read_acl_split",
           "read_csv_rows", "EncodedReviews", "pad_batch", "BucketBatchSampler", "IMDBDataModule"]


# ------------------------------------------------------------------ datasets and batches
class EncodedReviews(Dataset):
    """Token ids of many reviews in one flat array (offsets mark where each starts)."""

    def __init__(self, reviews: Sequence[Review], vocab: Vocabulary):
        ids = [vocab.encode(r.tokens) for r in reviews]
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.ids = np.fromiter((t for x in ids for t in x), dtype=np.int32, count=int(self.offsets[-1]))
        self.labels = np.array([r.label for r in reviews], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        ids = torch.from_numpy(self.ids[self.offsets[i]: self.offsets[i + 1]].astype(np.int64))
        return {"tokens": ids, "length": int(self.lengths[i]), "label": int(self.labels[i])}


def pad_batch(items: list[dict]) -> dict:
    """Pads token ids with 0 (<pad>) to the longest review of the batch."""
    lengths = torch.tensor([it["length"] for it in items], dtype=torch.long)
    tokens = torch.zeros(len(items), int(lengths.max()), dtype=torch.long)
    for row, it in enumerate(items):
        tokens[row, : it["length"]] = it["tokens"]
    return {"tokens": tokens, "length": lengths, "label": torch.tensor([it["label"] for it in items])}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of reviews of similar length: a random order (from `sampler`, seeded by
    seed and epoch, so resumed runs see the same batches), cut into pools of
    `pool_batches` batches, each pool sorted by length and cut into batches, then the
    batches shuffled. Without shuffling, the whole split is sorted by length.
    Lightning calls `self.sampler.set_epoch`."""

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                 pool_batches: int = 50):
        self.lengths, self.batch_size, self.shuffle = np.asarray(lengths), batch_size, shuffle
        self.sampler = EpochSeededSampler(len(lengths), seed) if shuffle else None
        self.pool = batch_size * pool_batches if shuffle else max(1, len(lengths))

    def _batches(self) -> list[list[int]]:
        order = list(self.sampler) if self.sampler is not None else list(range(len(self.lengths)))
        batches = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start: start + self.pool], key=lambda i: self.lengths[i])
            batches += [pool[s: s + self.batch_size] for s in range(0, len(pool), self.batch_size)]
        if self.sampler is not None:
            g = torch.Generator().manual_seed(derived_seed(self.sampler.seed, self.sampler.epoch + 7))
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        full, rest = divmod(n, self.pool)
        return full * -(-self.pool // self.batch_size) + -(-rest // self.batch_size)


# ------------------------------------------------------------------ the data module
class IMDBDataModule(BaseDataModule):
    """Binary sentiment of IMDB reviews: train / val (carved from train) / test."""

    target_names = ("label",)
    target_classes = {"sentiment": 2}

    def __init__(self, vocab_size: int = 10_000, max_len: int = 200, length_policy: str = "truncate",
                 truncate_side: str = "head", val_fraction: float = 0.1, max_train: int | None = None,
                 max_test: int | None = None, format: str = "auto", csv_test_fraction: float = 0.5,
                 bucket: bool = True, download: bool = False,
                 download_mirror: str | None = None, **kw):
        super().__init__(**kw)
        if vocab_size < 3:
            raise ValueError(f"data.vocab_size must be >= 3 (<pad>, <unk> and one word), got {vocab_size}")
        if max_len < 1:
            raise ValueError(f"data.max_len must be >= 1, got {max_len}")
        if length_policy not in ("truncate", "filter"):
            raise ValueError(f"data.length_policy must be 'truncate' or 'filter', got {length_policy!r}")
        if truncate_side not in ("head", "tail"):
            raise ValueError(f"data.truncate_side must be 'head' or 'tail', got {truncate_side!r}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if not 0 < csv_test_fraction < 1:
            raise ValueError(f"data.csv_test_fraction must be in (0, 1), got {csv_test_fraction}")
        for name, value in (("max_train", max_train), ("max_test", max_test)):
            if value is not None and value < 1:
                raise ValueError(f"data.{name} must be a positive count or null (all), got {value}")
        if format not in ("auto", "aclimdb", "csv"):
            raise ValueError(f"data.format must be auto, aclimdb or csv, got {format!r}")
        self.vocab_size, self.max_len, self.val_fraction = vocab_size, max_len, val_fraction
        self.length_policy, self.truncate_side = length_policy, truncate_side
        self.max_train, self.max_test, self.format = max_train, max_test, format
        self.csv_test_fraction, self.bucket, self.download = csv_test_fraction, bucket, download
        self._download_mirror = download_mirror  # underscored: not part of any cache key
        self.vocab: Vocabulary | None = None
        self.skipped: dict[str, Counter] = {}
        self._source: tuple[str, Path] | None = None
        self._csv_rows: list[Review] | None = None  # the CSV is read once for both splits
        self._csv_skipped: Counter = Counter()

    # ---- where the files are
    def prepare_data(self) -> None:
        if self.download and self._find_source(raise_missing=False) is None:
            fetch_dataset("imdb", self.root, self._download_mirror)
        self._find_source()

    def _find_source(self, raise_missing: bool = True) -> tuple[str, Path] | None:
        if self._source is None:
            folder = acl_folder(self.root) if self.format in ("auto", "aclimdb") else None
            path = find_csv(self.root) if folder is None and self.format in ("auto", "csv") else None
            self._source = ("aclimdb", folder) if folder else ("csv", path) if path else None
        if self._source is None and raise_missing:
            expected = {"auto": "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt or IMDB Dataset.csv",
                        "aclimdb": "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt",
                        "csv": "a CSV with a review,sentiment header (IMDB Dataset.csv)"}[self.format]
            raise DatasetNotFoundError(f"IMDB: expected under data.root={self.root} but missing: {expected}.\n"
                                       f"Get it: {HOW_TO_GET}.\nThen run with data.root=<folder that holds them>.")
        return self._source

    # ---- reading
    def _filter(self) -> ReviewFilter:
        return ReviewFilter(self.max_len, self.length_policy, self.truncate_side)

    def _read(self, split: str) -> list[Review]:
        kind, where = self._find_source()
        keep = self._filter()
        limit = self.max_train if split == "train" else self.max_test
        rng = np.random.default_rng([self.seed, 0 if split == "train" else 1])
        if kind == "aclimdb":
            files = list_acl_files(where, split)
            if not files:
                raise DatasetNotFoundError(f"IMDB: no review files in {where / split}/{{pos,neg}}/. "
                                           f"Get it: {HOW_TO_GET}")
            reviews = read_acl_split(files, keep, limit, rng)
        else:
            reviews = self._csv_split(where, split, keep)
            if limit is not None and len(reviews) > limit:
                reviews = [reviews[i] for i in np.sort(rng.permutation(len(reviews))[:limit])]
        self._report(split, keep, len(reviews))
        if not reviews:
            raise DatasetNotFoundError(f"IMDB {split}: no usable review under {where} "
                                       f"(skipped: {dict(keep.skipped)}). Get it: {HOW_TO_GET}")
        return reviews

    def _csv_split(self, path: Path, split: str, keep: ReviewFilter) -> list[Review]:
        """The CSV has no split: a seeded csv_test_fraction of its rows is the test set."""
        if self._csv_rows is None:
            self._csv_rows = read_csv_rows(path, keep)
            self._csv_skipped = keep.skipped.copy()
        else:
            keep.skipped.update(self._csv_skipped)
        n = len(self._csv_rows)
        test, train = carve(n, [int(round(n * self.csv_test_fraction))], [self.seed, 2])
        return [self._csv_rows[i] for i in (test if split == "test" else train)]

    def _report(self, split: str, keep: ReviewFilter, kept: int) -> None:
        self.skipped[split] = keep.skipped
        detail = ", ".join(f"{n} {why}" for why, n in keep.skipped.items()) or "none"
        log.info("IMDB %s: %d reviews (skipped: %s)", split, kept, detail)
        bad = {why: n for why, n in keep.skipped.items() if not why.startswith("longer than")}
        if bad:  # length filtering is a choice; bad files are worth a warning
            log.warning("IMDB %s: skipped %d bad reviews: %s", split, sum(bad.values()),
                        ", ".join(f"{n} {why}" for why, n in bad.items()))
        if keep.replaced_bytes:
            log.info("IMDB %s: %d invalid UTF-8 bytes replaced by U+FFFD", split, keep.replaced_bytes)

    def _split_train_val(self, reviews: list[Review]) -> tuple[list[Review], list[Review]]:
        n_val = int(round(len(reviews) * self.val_fraction))
        if self.val_fraction > 0 and len(reviews) > 1:
            n_val = min(max(n_val, 1), len(reviews) - 1)
        val, train = carve(len(reviews), [n_val], [self.seed, 3], sort=False)  # train in shuffled order
        return [reviews[i] for i in train], [reviews[i] for i in val]

    def setup(self, stage: str | None = None) -> None:
        need_train = stage in (None, "fit", "validate") or self.vocab is None
        if need_train and self.train_set is None:
            train, val = self._split_train_val(self._read("train"))
            if self.vocab is None:  # from a checkpoint it is loaded, not rebuilt
                self.vocab = Vocabulary.build((r.tokens for r in train), max_size=self.vocab_size)
            self.train_set, self.val_set = EncodedReviews(train, self.vocab), EncodedReviews(val, self.vocab)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = EncodedReviews(self._read("test"), self.vocab)

    # ---- what models need
    def train_token_lists(self) -> list[list[str]]:
        """The training reviews as words of the vocabulary (<unk> for the rest): the
        corpus for word2vec, so every vector it learns has an embedding row."""
        self.setup("fit")
        itos, ds = self.vocab.itos, self.train_set
        return [[itos[t] for t in ds.ids[ds.offsets[i]: ds.offsets[i + 1]]] for i in range(len(ds))]

    def collate_fn(self, items: list[dict]) -> dict:
        return pad_batch(items)

    # ---- loaders
    def _text_loader(self, dataset: EncodedReviews | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("IMDBDataModule.setup() did not build this split")
        if not self.bucket:
            return self._loader(dataset, shuffle=shuffle)
        batches = BucketBatchSampler(dataset.lengths, self.batch_size, shuffle, self.seed)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=pad_batch, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._text_loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._text_loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._text_loader(self.test_set, shuffle=False)

    # ---- checkpointed state: the vocabulary, so evaluation reads only the test split
    def state_dict(self) -> dict:
        return {"vocab": self.vocab.state_dict()} if self.vocab is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if state.get("vocab"):
            self.vocab = Vocabulary.from_state_dict(state["vocab"])
