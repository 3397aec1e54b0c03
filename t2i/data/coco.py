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

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from gensim.parsing.preprocessing import STOPWORDS

from t2i.data.base import BaseDataModule, DatasetNotFoundError, ImageArrayDataset, load_python2_pickle
from t2i.data.cache import cached_images
from t2i.data.download import fetch_dataset
from t2i.data.splits import carve, split_count
from t2i.text import Vocabulary, WordVectors, tokenize
from t2i.text.word2vec import fit_word_vectors

log = logging.getLogger("t2i")

IFT6266_PICKLE = "inpainting/dict_key_imgID_value_caps_train_and_valid.pkl"
IFT6266_URL = "http://www-labs.iro.umontreal.ca/~lisa/datasets/mscoco_inpaiting/inpainting.tar.bz2"
COCO_URL = ("data.download=true (python -m t2i.data.download coco --root ROOT), or "
            "https://cocodataset.org/#download (2014 Train/Val images: train2014.zip, val2014.zip; "
            "2014 Train/Val annotations: annotations_trainval2014.zip)")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
CAPTION_MODES = ("none", "bow", "word2vec")
FILLS = ("zeros", "mean")
NO_CAPTION = ""


def caption_feature_dim(captions: str, bow_size: int, word2vec_dim: int) -> int:
    """Length of the caption feature vector each mode gives (what models are built for)."""
    if captions not in CAPTION_MODES:
        raise ValueError(f"data.captions must be one of {CAPTION_MODES}, got {captions!r}")
    return {"none": 0, "bow": bow_size, "word2vec": word2vec_dim}[captions]


def hole_box(image_size: int, hole_size: int) -> slice:
    """The rows (and columns) of the hidden centre."""
    start = (image_size - hole_size) // 2
    return slice(start, start + hole_size)


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


# ------------------------------------------------------------------ caption features
def image_tokens(captions: list[str]) -> list[str]:
    """All the words of an image's captions, in order."""
    return [t for c in captions for t in tokenize(c)]


def content_words(tokens: list[str]) -> list[str]:
    """Stop words (gensim's list), numbers and single letters removed."""
    return [t for t in tokens if t not in STOPWORDS and len(t) > 1 and not t.isdigit()]


def build_bow_words(train_captions: list[list[str]], bow_size: int) -> list[str]:
    """The `bow_size` content words found in the most training images (document
    frequency, ties alphabetical): frequent enough to learn from, and not stop words."""
    docs = [sorted(set(content_words(image_tokens(c)))) for c in train_captions]
    vocab = Vocabulary.build(docs, max_size=bow_size + 2)
    return vocab.itos[2:]


def bow_features(captions: list[list[str]], words: list[str], bow_size: int) -> torch.Tensor:
    index = {w: i for i, w in enumerate(words)}
    out = torch.zeros(len(captions), bow_size)
    for row, caps in enumerate(captions):
        cols = [index[t] for t in set(image_tokens(caps)) if t in index]
        out[row, cols] = 1.0
    return out


def mean_vector_features(captions: list[list[str]], vectors: WordVectors) -> torch.Tensor:
    """Mean of the standardised word vectors of an image's content words (all words when
    a caption has only stop words); 0 (the mean word) when none has a vector."""
    out = torch.zeros(len(captions), vectors.dim)
    for row, caps in enumerate(captions):
        tokens = image_tokens(caps)
        words = content_words(tokens) or tokens
        ids = [vectors.vocab.stoi[w] for w in words if w in vectors.vocab.stoi and vectors.known[vectors.vocab.stoi[w]]]
        if ids:
            out[row] = vectors.matrix[ids].mean(0)
    return out


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
