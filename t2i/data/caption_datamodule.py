"""Text-to-image data: images with one or more captions each, turned into word-vector
batches. Captions are tokenised and encoded to padded id arrays once at setup; per
batch the only text work is one index lookup into the standardised word-vector matrix
(in `collate_fn`), and images come from uint8 arrays (memory-mapped for real datasets).

Batch contract: `image` float (B, C, S, S) in [-1, 1]; `caption` list[str] (this
epoch's caption of each image); `word_vectors` float (B, L, D), zero rows for padding;
`length` long (B,) real word count (>= 1); `token_ids` long (B, L); plus per-image
fields such as `targets` (captioned shapes).

The base data module of every captioned dataset (`CaptionDataModule`); its Dataset,
sampler and collate are in t2i.data.caption_dataset."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from t2i.data.base import BaseDataModule, ResumableLoader
from t2i.data.caption_dataset import (
    SPLITS,
    CaptionBatch,
    CaptionDataset,
    CaptionedImages,
    CaptionSampler,
    WordVectorCollate,
    clean_caption,
    unit_range,
)
from t2i.text import Vocabulary, WordVectors, tokenize
from t2i.text.word2vec import WORD2VEC_DEFAULTS, check_settings, fit_word_vectors

log = logging.getLogger("t2i")
__all__ = ["SPLITS", "CaptionBatch", "CaptionDataModule", "CaptionDataset", "CaptionSampler", "CaptionedImages",
           "WordVectorCollate", "clean_caption", "unit_range"]


class CaptionDataModule(BaseDataModule):
    """Base of the text-to-image data modules. Subclasses implement `load_splits()`
    returning {"train"|"val"|"test": CaptionedImages}; this class tokenises, builds the
    vocabulary and word vectors from the training captions (gensim word2vec, cached, or
    pre-trained vectors), standardises every dimension and encodes all captions once.

    `state_dict()` carries the vocabulary, matrix and text settings, so a checkpoint can
    `encode` new captions with no dataset on disk."""

    def __init__(self, image_size: int = 64, max_words: int = 25, embedding_dim: int = 400,
                 word2vec: dict | None = None, standardize: bool = True, cache_dir: str | None = None, **kw):
        super().__init__(**kw)
        if max_words < 2:
            raise ValueError(f"data.max_words must be >= 2, got {max_words}")
        if embedding_dim < 1:
            raise ValueError(f"data.embedding_dim must be >= 1, got {embedding_dim}")
        check_settings(dict(word2vec or {}), WORD2VEC_DEFAULTS, "data.word2vec")
        self.image_size, self.max_words, self.embedding_dim = image_size, max_words, embedding_dim
        # underscored: settings that must not enter the domain classifier's cache key
        self._word2vec = {**WORD2VEC_DEFAULTS, **dict(word2vec or {})}
        if self._word2vec["sg"] not in (0, 1):
            raise ValueError(f"data.word2vec.sg must be 1 (skip-gram) or 0 (CBOW), got {self._word2vec['sg']}")
        self.standardize = standardize
        self.cache_dir = Path(str(cache_dir if cache_dir is not None else ".cache")).expanduser()
        self.word_vectors: WordVectors | None = None
        self._text_stats: dict = {}
        self._tokens: dict | None = None  # per split: (captions, tokens, first, count, images, fields)
        self._examples: list[str] = []  # test captions restored from a checkpoint

    # ------------------------------------------------------------ subclass API
    def load_splits(self) -> dict[str, CaptionedImages]:
        raise NotImplementedError

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self._tokens = {name: self._tokenize_split(name, split) for name, split in self.load_splits().items()}
        if self.word_vectors is None:  # not restored from a checkpoint
            self.word_vectors = self.build_word_vectors(self._tokens["train"]["tokens"])
        self._encode_splits()

    def _tokenize_split(self, name: str, split: CaptionedImages) -> dict:
        """Clean and tokenise; captions without a word are dropped (counted), then images
        left without a caption."""
        captions, tokens, first, count, keep = [], [], [], [], []
        empty = 0
        for i, caps in enumerate(split.captions):
            start = len(captions)
            for cap in caps:
                words = tokenize(cap)
                if not words:
                    empty += 1
                    continue
                captions.append(clean_caption(cap))
                tokens.append(words)
            if len(captions) > start:
                keep.append(i)
                first.append(start)
                count.append(len(captions) - start)
        if empty:
            log.warning("%s %s: %d empty captions skipped", type(self).__name__, name, empty)
        dropped = len(split.captions) - len(keep)
        if dropped:
            log.warning("%s %s: %d images without any usable caption skipped", type(self).__name__, name, dropped)
        images = split.images
        if dropped:  # (memory-mapped arrays: this copies only the kept rows)
            images = images[np.asarray(keep)] if isinstance(images, np.ndarray) else images[torch.tensor(keep)]
        fields = {k: v[torch.tensor(keep, dtype=torch.long)] for k, v in split.fields.items()}
        self._text_stats[f"{name}/empty_captions"] = empty
        return dict(captions=captions, tokens=tokens, first=torch.tensor(first, dtype=torch.long),
                    count=torch.tensor(count, dtype=torch.long), images=images, fields=fields)

    def build_word_vectors(self, train_tokens: list[list[str]]) -> WordVectors:
        """Vocabulary of the training captions; gensim vectors (trained here and cached,
        or pre-trained from a path), standardised per dimension over the training words."""
        if not train_tokens:
            raise ValueError(f"{type(self).__name__}: the training split has no captions")
        vocab = Vocabulary.build(train_tokens)
        vectors = fit_word_vectors(train_tokens, vocab, self.embedding_dim, **self._word2vec, seed=self.seed,
                                   cache_dir=self.cache_dir, standardize=self.standardize)
        without = len(vocab) - 2 - int(vectors.known.sum())
        if without:
            log.warning("%d of %d vocabulary words have no word vector (zero rows): %s", without, len(vocab) - 2,
                        ", ".join([w for w, k in zip(vocab.itos[2:], vectors.known[2:].tolist()) if not k][:20]))
        return vectors

    def _encode_splits(self) -> None:
        """(Re-)encode every split's tokens with the current vocabulary."""
        sets = []
        for name in SPLITS:
            part = self._tokens[name]
            ids, lengths, unknown = self.encode_tokens(part["tokens"])
            self._report_unknown(name, unknown, sum(lengths.tolist()))
            sets.append(CaptionDataset(part["images"], part["captions"], ids, lengths, part["first"],
                                       part["count"], part["fields"]))
        self.train_set, self.val_set, self.test_set = sets

    def _report_unknown(self, split: str, unknown: Counter, total: int) -> None:
        n = sum(unknown.values())
        self._text_stats[f"{split}/unknown_words"] = n
        self._text_stats[f"{split}/words"] = total
        if n:
            common = ", ".join(f"{w} ({c})" for w, c in unknown.most_common(10))
            log.info("%s %s: %d of %d caption words have no word vector (%.1f%%); most common: %s",
                     type(self).__name__, split, n, total, 100 * n / max(1, total), common)

    # ---------------------------------------------------------------- encoding
    def encode_tokens(self, token_lists: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor, Counter]:
        """Token lists -> padded ids (N, L) int32, lengths (N,), Counter of unknown words.
        Long captions keep words 1..L-1 plus the last word."""
        wv = self._require_vectors()
        ids = np.zeros((len(token_lists), self.max_words), dtype=np.int32)
        lengths = np.zeros(len(token_lists), dtype=np.int64)
        unknown: Counter = Counter()
        for i, tokens in enumerate(token_lists):
            row = wv.vocab.encode(tokens, max_len=self.max_words, keep_last=True)
            ids[i, : len(row)] = row
            lengths[i] = len(row)
            unknown.update(wv.unknown_words(tokens))
        longer = [len(t) for t in token_lists if len(t) > self.max_words]
        if longer:  # one line per call (a split, or generate.py's captions), not one per caption
            log.warning("%d caption(s) longer than data.max_words=%d words (the longest: %d) were cut: each keeps %d "
                        "words (its first %d and its last)", len(longer), self.max_words, max(longer), self.max_words,
                        self.max_words - 1)
        return torch.from_numpy(ids), torch.from_numpy(lengths), unknown

    def encode(self, captions: list[str]) -> dict:
        """New captions -> dict(word_vectors (N, L, D), length (N,), token_ids (N, L),
        unknown: per caption, its words without a vector). Unknown words are warned
        about and map to zero vectors; a caption with no word at all gets length 1."""
        if isinstance(captions, str):
            captions = [captions]
        token_lists = [tokenize(c) for c in captions]
        ids, lengths, _ = self.encode_tokens(token_lists)
        wv = self._require_vectors()
        unknown = [wv.unknown_words(t) for t in token_lists]
        for cap, words in zip(captions, unknown):
            if words:
                log.warning("caption %r: words without a word vector (used as zeros): %s", cap, ", ".join(words))
        empty = [c for c, t in zip(captions, token_lists) if not t]
        if empty:
            log.warning("captions without any word (encoded as one <pad>): %s", empty)
        ids = ids.long()
        return dict(word_vectors=wv.lookup(ids), length=lengths.clamp_min(1), token_ids=ids, unknown=unknown)

    def _require_vectors(self) -> WordVectors:
        if self.word_vectors is None:
            raise RuntimeError(f"{type(self).__name__} has no word vectors yet: call setup() (needs the dataset) "
                               "or load_state_dict() from a checkpoint first")
        return self.word_vectors

    @property
    def word2vec(self) -> dict:
        return dict(self._word2vec)

    @property
    def text_stats(self) -> dict:
        """Counts from setup: empty captions skipped, words without a vector, per split."""
        return dict(self._text_stats)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._require_vectors().vocab

    @property
    def collate_fn(self) -> WordVectorCollate:
        return WordVectorCollate(self._require_vectors().matrix)

    # ---------------------------------------------------------------- loaders
    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() did not build the train split")
        n = len(self.train_set)
        sampler = CaptionSampler(n, self.seed, self.batch_size, self._progress)
        return ResumableLoader(self.train_set, batch_size=self.batch_size, sampler=sampler,
                          drop_last=n > self.batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0, collate_fn=self.collate_fn)

    # ------------------------------------------------------------- checkpoint
    def text_settings(self) -> dict:
        return dict(max_words=self.max_words, embedding_dim=self.embedding_dim, standardize=self.standardize,
                    word2vec=dict(self._word2vec))

    def example_captions(self, n: int = 16) -> list[str]:
        """The first caption of the first `n` test images (the demo's and model card's
        examples): from the splits after setup, else from a restored checkpoint."""
        if self._tokens is not None:
            test = self._tokens["test"]
            return [test["captions"][i] for i in test["first"][:n].tolist()]
        return list(self._examples[:n])

    def state_dict(self) -> dict:
        if self.word_vectors is None:
            return {}
        return {"word_vectors": self.word_vectors.state_dict(), "settings": self.text_settings(),
                "examples": self.example_captions()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the vocabulary and matrix a model was trained with. Splits already
        encoded (Lightning restores after setup) are re-encoded with it."""
        if not state:
            return
        settings = state.get("settings", {})
        self.max_words = int(settings.get("max_words", self.max_words))
        self.embedding_dim = int(settings.get("embedding_dim", self.embedding_dim))
        self.word_vectors = WordVectors.from_state_dict(state["word_vectors"])
        self._examples = list(state.get("examples", []))
        if self._tokens is not None:
            self._encode_splits()
