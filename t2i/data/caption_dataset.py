"""Captioned images as a torch Dataset: the encoded captions of every image, one caption
per image per epoch (`CaptionSampler`), gathered in one index lookup per batch and given
their word vectors in `collate_fn` (`WordVectorCollate`). The data module over them:
t2i.data.caption_datamodule."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from t2i.data.base import EpochSeededSampler
from t2i.tensors import derived_seed

SPLITS = ("train", "val", "test")


@dataclass
class CaptionedImages:
    """One split as a subclass loads it: uint8 images (N, C, S, S) and, per image, its
    raw captions (any number; images left with none after cleaning are dropped)."""
    images: np.ndarray | torch.Tensor
    captions: list[list[str]]
    fields: dict[str, torch.Tensor] = field(default_factory=dict)  # per image, e.g. targets

    def __post_init__(self):
        if len(self.captions) != len(self.images):
            raise ValueError(f"{len(self.captions)} caption lists for {len(self.images)} images")


class CaptionBatch(dict):
    """A batch already gathered by `CaptionDataset.__getitems__` (collate only adds the
    word vectors)."""


class CaptionDataset(Dataset):
    """Images with their encoded captions. Captions are stored flat (M, L) with, per
    image, the range [first, first + count) of its captions. Index with an int (the
    image's first caption) or with (image, draw) pairs from `CaptionSampler`, where
    caption `draw % count` is used: one caption per image per epoch."""

    def __init__(self, images, captions: list[str], token_ids: torch.Tensor, lengths: torch.Tensor,
                 first: torch.Tensor, count: torch.Tensor, fields: dict[str, torch.Tensor] | None = None):
        self.images, self.captions, self.token_ids, self.lengths = images, captions, token_ids, lengths
        self.first, self.count, self.fields = first, count, dict(fields or {})

    def __len__(self) -> int:
        return len(self.first)

    def _caption_index(self, index) -> tuple[int, int]:
        if isinstance(index, (tuple, list)):
            i, draw = int(index[0]), int(index[1])
            return i, int(self.first[i]) + draw % int(self.count[i])
        i = int(index)
        return i, int(self.first[i])

    def __getitems__(self, indices: Sequence) -> CaptionBatch:
        pairs = [self._caption_index(ix) for ix in indices]
        rows = np.array([p[0] for p in pairs], dtype=np.int64)
        caps = torch.tensor([p[1] for p in pairs], dtype=torch.long)
        images = self.images[rows] if isinstance(self.images, np.ndarray) else self.images.numpy()[rows]
        batch = CaptionBatch(image=unit_range(images), caption=[self.captions[c] for c in caps.tolist()],
                             token_ids=self.token_ids[caps].long(), length=self.lengths[caps].long())
        for name, values in self.fields.items():
            batch[name] = values[torch.from_numpy(rows)]
        return batch

    def __getitem__(self, index) -> dict:
        batch = self.__getitems__([index])
        return {k: v[0] for k, v in batch.items()}


def unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 -> float32 in [-1, 1], as t2i.images.from_uint8, in numpy: single-threaded, so a
    loader in the main process is not slowed by torch's intra-op threads on a busy CPU."""
    out = images.astype(np.float32)
    np.divide(out, 127.5, out=out)
    np.subtract(out, 1.0, out=out)
    return torch.from_numpy(out)


class CaptionSampler(EpochSeededSampler):
    """EpochSeededSampler's order (resume-aware) paired with one caption draw per image,
    drawn from (seed, pass over the data): every epoch samples one caption per image,
    and a resumed run sees the pairs an uninterrupted run would have seen."""

    def _pass(self) -> int:
        state = self.progress() if self.progress is not None else None
        if state is None:
            return self.epoch
        done, per_epoch = state
        return done // max(1, per_epoch)

    def __iter__(self):
        epoch = self._pass()
        g = torch.Generator().manual_seed(derived_seed(self.seed, epoch) * 2 + 1)  # a stream apart from the order
        draws = torch.randint(0, 2 ** 31 - 1, (self.n,), generator=g).tolist()
        return iter([(i, draws[i]) for i in super().__iter__()])


class WordVectorCollate:
    """collate_fn: stacks items (or takes a gathered CaptionBatch) and looks the token ids
    up in the standardised matrix. A small picklable object, so workers can run it."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix
        self._rows = matrix.detach().cpu().numpy()  # numpy gather: single-threaded (see unit_range)

    def __call__(self, items) -> dict:
        if isinstance(items, CaptionBatch):
            batch = dict(items)
        else:
            batch = {k: [it[k] for it in items] for k in items[0]}
            for k, v in batch.items():
                if torch.is_tensor(v[0]):
                    batch[k] = torch.stack(v)
        # <pad> (id 0) rows are 0
        batch["word_vectors"] = torch.from_numpy(np.take(self._rows, batch["token_ids"].numpy(), axis=0))
        return batch


def clean_caption(text: str) -> str:
    """Collapse stray whitespace and attach detached punctuation ("a dog ." -> "a dog.")."""
    text = " ".join(str(text).split())
    for p in ".,!?;:":
        text = text.replace(f" {p}", p)
    return text
