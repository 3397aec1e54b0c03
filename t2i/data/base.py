"""Shared pieces of every data module: epoch-seeded shuffling, uint8 image datasets,
and the clear errors users get when a dataset is missing."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from t2i.errors import T2IError
from t2i.images import from_uint8
from t2i.tensors import derived_seed


def find_below(root: Path, name: str, folder: bool = False) -> Path | None:
    """File (or folder) `name` at root or up to two levels below (archives nest differently)."""
    kind = Path.is_dir if folder else Path.is_file
    if kind(root / name):
        return root / name
    for pattern in (f"*/{name}", f"*/*/{name}"):
        hits = sorted(p for p in root.glob(pattern) if kind(p))
        if hits:
            return hits[0]
    return None


def load_python2_pickle(path: Path):
    """A pickle that Python 2 may have written: its byte strings are decoded as latin-1."""
    with open(path, "rb") as f:
        try:
            return pickle.load(f)
        except UnicodeDecodeError:
            f.seek(0)
            return pickle.load(f, encoding="latin1")


class DatasetNotFoundError(T2IError, FileNotFoundError):
    """Raised when a dataset's files are absent; the message says what to fetch and where."""


def require_files(root: str | Path, expected: Sequence[str], dataset: str, how_to_get: str) -> Path:
    """Fail fast, naming every expected file that is missing and how to get it."""
    root = Path(root).expanduser()
    missing = [name for name in expected if not (root / name).exists()]
    if missing:
        raise DatasetNotFoundError(
            f"{dataset}: expected under data.root={root} but missing: {', '.join(missing)}.\n"
            f"Get it: {how_to_get}\nThen run with data.root=<folder that holds them>."
        )
    return root


class EpochSeededSampler(Sampler[int]):
    """A random order that depends only on (seed, pass over the data), so a resumed run
    sees exactly the batches an uninterrupted one would have seen.

    `progress` returns (batches consumed so far in the run, batches per epoch), i.e. the
    trainer's global_step and num_training_batches. The pass and the position inside it
    come from there rather than from Lightning's epoch counter, which after a resume from
    an end-of-epoch checkpoint runs one ahead; a run resumed mid-epoch continues with the
    rest of that epoch's order instead of restarting it. Without a trainer the order
    follows `set_epoch` (which Lightning also calls)."""

    def __init__(self, n: int, seed: int, batch_size: int = 1, progress=None):
        self.n, self.seed, self.batch_size, self.progress, self.epoch = n, seed, batch_size, progress, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch, start = self.epoch, 0
        state = self.progress() if self.progress is not None else None
        if state is not None:
            done, per_epoch = state
            epoch, offset = divmod(done, max(1, per_epoch))
            start = offset * self.batch_size
        g = torch.Generator().manual_seed(derived_seed(self.seed, epoch))
        return iter(torch.randperm(self.n, generator=g)[start:].tolist())

    def __len__(self) -> int:
        return self.n


class ResumableLoader(DataLoader):
    """A DataLoader over an EpochSeededSampler, which Lightning may treat as resumable
    mid-epoch (it warns otherwise): the sampler's position comes from the trainer's
    restored global_step, so there is no loader state to save (tests/test_dcgan.py
    compares a run resumed mid-epoch with an uninterrupted one, weight for weight)."""

    def state_dict(self) -> dict:
        return {"position": "the trainer's global_step"}

    def load_state_dict(self, state: dict) -> None:
        pass


class ImageArrayDataset(Dataset):
    """Images held as one uint8 array (N, C, H, W), in memory or memory-mapped, plus
    per-item fields (captions, attributes, labels). Decoding happened once, before."""

    def __init__(self, images: np.ndarray | torch.Tensor, **fields):
        self.images = images
        self.fields = fields
        for name, values in fields.items():
            if len(values) != len(images):
                raise ValueError(f"field {name!r} has {len(values)} items for {len(images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i]
        if not torch.is_tensor(image):  # numpy / read-only memmap: copy the one item
            image = torch.from_numpy(np.array(image))
        item = {"image": from_uint8(image)}
        for name, values in self.fields.items():
            item[name] = values[i]
        return item


class BaseDataModule(pl.LightningDataModule):
    """Holds the loader settings every data module shares. Subclasses fill
    `self.train_set`, `self.val_set`, `self.test_set` in `setup` and set
    `channels` / `image_size` (what the models are built for)."""

    channels: int = 3
    image_size: int = 64
    domain_name: str | None = None  # set where a domain feature extractor makes sense
    # Whether the run's seed changes the images of the splits (generated shapes: yes; files
    # split with a fixed split seed: no). When it does not, runs of every seed share one
    # cached domain classifier and reference statistics, so their numbers compare.
    seed_changes_data: bool = True

    def __init__(self, root: str = "data", batch_size: int = 64, num_workers: int = 0,
                 seed: int = 0, pin_memory: bool = False, channels: int | None = None):
        super().__init__()
        # `channels` sits in the data config so models can read ${data.channels}; it is
        # a fact of the dataset, so it is checked, not chosen.
        if channels is not None and channels != type(self).channels:
            raise ValueError(f"data.channels={channels}, but {type(self).__name__} has "
                             f"{type(self).channels} channels: remove the override")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.root = Path(str(root)).expanduser()
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.pin_memory = pin_memory
        self.train_set = self.val_set = self.test_set = None

    def _loader(self, dataset: Dataset, shuffle: bool, drop_last: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() did not build this split")
        sampler = EpochSeededSampler(len(dataset), self.seed, self.batch_size, self._progress) if shuffle else None
        return (ResumableLoader if shuffle else DataLoader)(
            dataset, batch_size=self.batch_size, sampler=sampler, drop_last=drop_last,
            num_workers=self.num_workers, pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0, collate_fn=getattr(self, "collate_fn", None),
        )

    def _progress(self) -> tuple[int, int] | None:
        """(batches consumed, batches per epoch) of the running fit, for the sampler."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.training:
            return None
        per_epoch = trainer.num_training_batches
        if not isinstance(per_epoch, int) or per_epoch <= 0:
            return None
        return trainer.global_step, per_epoch

    def train_dataloader(self) -> DataLoader:
        # drop_last keeps batch statistics (BatchNorm in D) comparable between steps.
        drop = len(self.train_set) > self.batch_size
        return self._loader(self.train_set, shuffle=True, drop_last=drop)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

