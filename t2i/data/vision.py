"""MNIST and CIFAR-10 from their original files (IDX; CIFAR python batches), decoded
once into uint8 arrays at the model's image size."""
from __future__ import annotations

import logging
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.datasets.mnist import read_image_file, read_label_file

from t2i.data.base import BaseDataModule, DatasetNotFoundError, ImageArrayDataset, require_files
from t2i.data.download import fetch_dataset
from t2i.data.splits import carve

log = logging.getLogger("t2i")

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"]
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def fit_size(images: torch.Tensor, size: int, resize: bool) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, size, size), padding with black or resizing."""
    h = images.shape[-1]
    if h == size:
        return images
    if not resize and h < size:
        p = size - h
        return F.pad(images, (p // 2, p - p // 2, p // 2, p - p // 2))
    out = [F.interpolate(images[s:s + 4096].float(), size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).round().clamp(0, 255).to(torch.uint8)
           for s in range(0, len(images), 4096)]
    return torch.cat(out)


def split_train_val(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: val_size images carved from the training files by `seed`."""
    if not 0 <= val_size < n:
        raise ValueError(f"data.val_size must be in [0, {n}), got {val_size}")
    val, train = carve(n, [val_size], seed)
    return train, val


class _LabelledImages(BaseDataModule):
    """Shared by MNIST and CIFAR-10: train/val carved from train, official test."""

    target_names = ("label",)
    seed_changes_data = False  # the val split has its own seed: runs of any seed share splits and feature nets

    def __init__(self, image_size: int = 32, val_size: int = 5000, download: bool = False, split_seed: int = 0,
                 download_mirror: str | None = None, **kw):
        super().__init__(**kw)
        if image_size not in (32, 64):
            raise ValueError(f"data.image_size must be 32 or 64, got {image_size}")
        self.image_size, self.val_size, self.download = image_size, val_size, download
        self.split_seed = split_seed
        self._download_mirror = download_mirror  # underscored: not part of the evaluators' cache key

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _dataset(self, images: torch.Tensor, labels: torch.Tensor) -> ImageArrayDataset:
        return ImageArrayDataset(images, label=labels, targets=labels[:, None])

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images, labels = self.load(train=True)
        tr, va = split_train_val(len(images), self.val_size, self.split_seed)
        self.train_set = self._dataset(images[tr], labels[tr])
        self.val_set = self._dataset(images[va], labels[va])
        self.test_set = self._dataset(*self.load(train=False))


class MNISTDataModule(_LabelledImages):
    """MNIST from ROOT/MNIST/raw/*-ubyte (torchvision's reader). Digits are padded
    28 -> 32 (or resized with resize=true, or to 64)."""

    channels = 1
    domain_name = "mnist"
    target_classes = {"digit": 10}

    def __init__(self, resize: bool = False, **kw):
        super().__init__(**kw)
        self.resize = resize

    def prepare_data(self) -> None:
        if self.download:
            fetch_dataset("mnist", self.root, self._download_mirror)
        require_files(self.root / "MNIST" / "raw", MNIST_FILES, "MNIST",
                      "download=true (or python -m t2i.data.download mnist --root ROOT) fetches it where "
                      "internet exists, or copy the four IDX files "
                      "(gunzipped) from https://yann.lecun.com/exdb/mnist/ (mirror: "
                      "https://ossci-datasets.s3.amazonaws.com/mnist/) into ROOT/MNIST/raw/")

    def load(self, train: bool):
        self.prepare_data()
        prefix = "train" if train else "t10k"
        raw = self.root / "MNIST" / "raw"
        try:
            images = read_image_file(str(raw / f"{prefix}-images-idx3-ubyte"))
            labels = read_label_file(str(raw / f"{prefix}-labels-idx1-ubyte"))
        except Exception as err:
            raise DatasetNotFoundError(f"MNIST files under {raw} are unreadable ({err}); "
                                       "re-download them (download=true)") from err
        return fit_size(images[:, None], self.image_size, self.resize), labels.long()


class CIFAR10DataModule(_LabelledImages):
    """CIFAR-10 from ROOT/cifar-10-batches-py (the python pickle batches)."""

    channels = 3
    domain_name = "cifar10"
    target_classes = {"class": 10}

    def prepare_data(self) -> None:
        if self.download:
            fetch_dataset("cifar10", self.root, self._download_mirror)
        require_files(self.root / "cifar-10-batches-py", CIFAR_FILES, "CIFAR-10",
                      "download=true (or python -m t2i.data.download cifar10 --root ROOT) fetches it where internet "
                      "exists, or extract "
                      "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into ROOT/")

    def load(self, train: bool):
        self.prepare_data()
        folder = self.root / "cifar-10-batches-py"
        names = CIFAR_FILES[:5] if train else CIFAR_FILES[5:]
        data, labels = [], []
        for name in names:
            try:
                with open(folder / name, "rb") as f:
                    entry = pickle.load(f, encoding="latin1")
                data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
            except Exception as err:
                raise DatasetNotFoundError(f"CIFAR-10 batch {folder / name} is unreadable ({err}); "
                                           "re-extract cifar-10-python.tar.gz") from err
        images = torch.from_numpy(np.concatenate(data))
        return fit_size(images, self.image_size, resize=True), torch.tensor(labels, dtype=torch.long)
