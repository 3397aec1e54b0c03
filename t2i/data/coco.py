"""MSCOCO inpainting: a 64x64 image whose 32x32 centre is hidden. The input is the
image with its centre filled (0 or the training set's mean colour), the target is the
centre, and the captions become one feature vector per image (a binary bag of words,
a mean of word2vec vectors, or nothing).

Two on-disk layouts under `data.root`, detected automatically:

- IFT6266 (2017): inpainting/train2014/*.jpg and inpainting/val2014/*.jpg (already
  64x64) and inpainting/dict_key_imgID_value_caps_train_and_valid.pkl, a pickled dict
  {file stem: [caption, ...]};
- COCO: train2014/ and/or val2014/ (any size) with annotations/captions_<split>2014.json.

Splits: with two image folders, train is train2014 and val/test are carved from
val2014; with one folder, val/test are carved from it and train is the rest. Carving is
a permutation by `seed`; `val_size`/`test_size` are counts (>= 1) or fractions (< 1) of
the folder they are carved from.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from t2i.data.base import BaseDataModule, ImageArrayDataset
from t2i.data.coco_caption_features import bow_features, build_bow_words, mean_vector_features
from t2i.data.coco_files import NO_CAPTION, ImageRows, detect_layout, read_pools, split_pools
from t2i.data.download import fetch_dataset
from t2i.text import Vocabulary, WordVectors, tokenize
from t2i.text.word2vec import fit_word_vectors

log = logging.getLogger("t2i")

CAPTION_MODES = ("none", "bow", "word2vec")
FILLS = ("zeros", "mean")


def caption_feature_dim(captions: str, bow_size: int, word2vec_dim: int) -> int:
    """Length of the caption feature vector each mode gives (what models are built for)."""
    if captions not in CAPTION_MODES:
        raise ValueError(f"data.captions must be one of {CAPTION_MODES}, got {captions!r}")
    return {"none": 0, "bow": bow_size, "word2vec": word2vec_dim}[captions]


def hole_box(image_size: int, hole_size: int) -> slice:
    """The rows (and columns) of the hidden centre."""
    start = (image_size - hole_size) // 2
    return slice(start, start + hole_size)
# ------------------------------------------------------------------ dataset
class InpaintingDataset(ImageArrayDataset):
    """Items: `image` (3, 64, 64) in [-1, 1], `masked` (the image with its centre
    filled), `caption` (the first caption, "" without one) and, with caption features,
    `caption_features` (D,)."""

    def __init__(self, images, hole: slice, fill: torch.Tensor, **fields):
        super().__init__(images, **fields)
        self.hole, self.fill = hole, fill

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        masked = item["image"].clone()
        masked[:, self.hole, self.hole] = self.fill[:, None, None]
        item["masked"] = masked
        return item


class COCOInpaintingDataModule(BaseDataModule):
    channels = 3

    def __init__(self, layout: str = "auto", image_size: int = 64, hole_size: int = 32, fill: str = "zeros",
                 captions: str = "bow", bow_size: int = 1000, word2vec_dim: int = 100, word2vec_epochs: int = 10,
                 pretrained_vectors: str | None = None, require_captions: bool = True,
                 val_size: int | float = 0.1, test_size: int | float = 0.1, cache_dir: str = ".cache",
                 download: bool = False, download_mirror: str | None = None, **kw):
        super().__init__(**kw)
        if image_size != 64 or not 0 < hole_size < image_size or (image_size - hole_size) % 2:
            raise ValueError(f"data.image_size must be 64 and data.hole_size an even size below it, "
                             f"got {image_size} and {hole_size}")
        if fill not in FILLS:
            raise ValueError(f"data.fill must be one of {FILLS}, got {fill!r}")
        self.text_dim = caption_feature_dim(captions, bow_size, word2vec_dim)
        if bow_size < 1 or word2vec_dim < 1:
            raise ValueError("data.bow_size and data.word2vec_dim must be >= 1")
        self.layout, self.image_size, self.hole_size, self.fill = layout, image_size, hole_size, fill
        self.captions, self.bow_size, self.word2vec_dim = captions, bow_size, word2vec_dim
        self.word2vec_epochs, self.pretrained_vectors = word2vec_epochs, pretrained_vectors
        self.require_captions, self.val_size, self.test_size = require_captions, val_size, test_size
        self.cache_dir = Path(str(cache_dir)).expanduser()
        # underscored: fetching settings, not part of the evaluators' cache key
        self._download, self._download_mirror = download, download_mirror
        self.counts: dict[str, int] = {}
        self.fill_value: torch.Tensor | None = None
        self.text_state: dict | None = None  # bow words or word vectors: from training, or a checkpoint

    # ------------------------------------------------------------ setup
    def prepare_data(self) -> None:
        """data.download=true: MSCOCO 2014 (train2014, val2014, caption annotations) fetched and laid out."""
        if self._download:
            fetch_dataset("coco", self.root, self._download_mirror)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.prepare_data()
        layout = detect_layout(self.root, self.layout)
        counts = defaultdict(int)
        pools = read_pools(self.root, layout, self.require_captions, counts)
        for pool in pools:
            counts["unreadable_images"] += pool.decode(self.image_size, self.cache_dir, f"coco-{layout}-{pool.name}")
        decoded = split_pools(pools, self.val_size, self.test_size, self.seed)
        if len(decoded["train"][0]) == 0:
            raise ValueError(f"MSCOCO inpainting: no readable training image under {self.root}")
        self.counts = dict(counts)
        log.info("MSCOCO inpainting (%s layout): %s images train/val/test; %s %s", layout,
                 "/".join(str(len(decoded[s][0])) for s in ("train", "val", "test")),
                 "skipped" if self.require_captions else "counted (images without captions kept)", self.counts)
        if self.fill_value is None:
            self.fill_value = self._fill_colour(decoded["train"][0])
        features = self._caption_features({s: c for s, (_, c) in decoded.items()})
        sets = {}
        for name, (images, caps) in decoded.items():
            fields = {"caption": [c[0] if c else NO_CAPTION for c in caps]}
            if features is not None:
                fields["caption_features"] = features[name]
            sets[name] = InpaintingDataset(images, hole_box(self.image_size, self.hole_size),
                                           self.fill_value, **fields)
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]

    def _fill_colour(self, train_images: ImageRows) -> torch.Tensor:
        """The hole's fill in [-1, 1]: 0, or the training images' mean colour."""
        if self.fill == "zeros":
            return torch.zeros(3)
        total = np.zeros(3)
        for chunk in train_images.chunks():
            total += chunk.astype(np.float64).mean(axis=(2, 3)).sum(0)
        return torch.tensor(total / len(train_images) / 127.5 - 1.0, dtype=torch.float32)

    def _caption_features(self, captions: dict[str, list[list[str]]]) -> dict[str, torch.Tensor] | None:
        if self.captions == "none":
            return None
        if self.text_state is None:
            self.text_state = self._fit_text(captions["train"])
        if self.captions == "bow":
            words = self.text_state["bow_words"]
            return {s: bow_features(c, words, self.bow_size) for s, c in captions.items()}
        vectors = WordVectors.from_state_dict(self.text_state["word_vectors"])
        return {s: mean_vector_features(c, vectors) for s, c in captions.items()}

    def _fit_text(self, train_captions: list[list[str]]) -> dict:
        """What the caption features learn from the training captions only."""
        if self.captions == "bow":
            words = build_bow_words(train_captions, self.bow_size)
            log.info("bag of words: %d words (%s ...)", len(words), ", ".join(words[:10]))
            return {"bow_words": words}
        sentences = [tokenize(c) for caps in train_captions for c in caps]
        vectors = fit_word_vectors(sentences, Vocabulary.build(sentences), self.word2vec_dim,
                                   epochs=self.word2vec_epochs, seed=self.seed, pretrained=self.pretrained_vectors,
                                   cache_dir=self.cache_dir, dim_setting="data.word2vec_dim")
        return {"word_vectors": vectors.state_dict()}

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The fill colour and the caption features' words/vectors, so evaluation on
        another machine featurises captions exactly as training did."""
        state = {"captions": self.captions}
        if self.fill_value is not None:
            state["fill_value"] = self.fill_value.tolist()
        if self.text_state is not None:
            state["text_state"] = self.text_state
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("captions") != self.captions:
            return  # captions changed since training: features are rebuilt
        if "fill_value" in state:
            self.fill_value = torch.tensor(state["fill_value"], dtype=torch.float32)
        self.text_state = state.get("text_state", self.text_state)
