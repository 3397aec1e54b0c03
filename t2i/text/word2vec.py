"""Word vectors from gensim: trained with Word2Vec on the training texts (cached on
disk, keyed by corpus and settings) or loaded pre-trained (word2vec binary/text, GloVe
text). Each dimension is standardised with statistics of the training tokens: word2vec
trained on templated captions puts slot-filling words almost on top of each other
(cosine ~0.99 for "circle"/"square"), and a GAN fed the raw vectors ignores the text."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from gensim.models import KeyedVectors, Word2Vec

from t2i.atomic_files import atomic_path, load_cache
from t2i.text.vocabulary import Vocabulary

log = logging.getLogger("t2i")

# data.word2vec's settings and their defaults: conf/data/text/word2vec.yaml holds the same
# values (tests/test_data_config.py compares them)
WORD2VEC_DEFAULTS = dict(sg=1, epochs=10, window=5, min_count=1, pretrained=None)


def corpus_hash(token_lists: Sequence[list[str]], **settings) -> str:
    h = hashlib.sha1(json.dumps(settings, sort_keys=True).encode())
    for tokens in token_lists:
        h.update(" ".join(tokens).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def train_word2vec(token_lists: Sequence[list[str]], dim: int = 400, sg: int = 1, window: int = 5,
                   min_count: int = 1, epochs: int = 10, seed: int = 0,
                   cache_dir: str | Path | None = None) -> KeyedVectors:
    """gensim Word2Vec (sg=1 skip-gram, sg=0 CBOW), cached under cache_dir/word2vec/.
    One worker thread, so the same corpus and seed give the same vectors."""
    settings = dict(dim=dim, sg=sg, window=window, min_count=min_count, epochs=epochs, seed=seed)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "word2vec" / f"w2v-{corpus_hash(token_lists, **settings)}.kv"
        kv = load_cache(path, lambda p: KeyedVectors.load(str(p)))
        if kv is not None:
            return kv
    sentences = [t for t in token_lists if t]
    if not sentences:
        raise ValueError("cannot train word2vec: the training texts contain no words")
    model = Word2Vec(sentences=sentences, vector_size=dim, sg=sg, window=window, min_count=min_count,
                     epochs=epochs, seed=seed, workers=1)
    kv = model.wv
    if path is not None:
        with atomic_path(path) as tmp:
            kv.save(str(tmp), separately=[])  # one file: no side .npy named after the temporary file
    log.info("word2vec trained: %d words, %d dims (%s)", len(kv), dim, "skip-gram" if sg else "CBOW")
    return kv


def check_settings(settings: dict, known, where: str) -> None:
    """Fail on a misspelt setting ("epoch" for "epochs") instead of silently training with the default."""
    unknown = set(settings) - set(known)
    if unknown:
        raise ValueError(f"{where} has unknown keys {sorted(unknown)}; known: {sorted(known)}")


def fit_word_vectors(train_tokens: Sequence[list[str]], vocab: Vocabulary, dim: int, *, sg: int = 1,
                     window: int = 5, min_count: int = 1, epochs: int = 10, seed: int = 0,
                     pretrained: str | Path | None = None, cache_dir: str | Path | None = None,
                     standardize: bool = True, dim_setting: str = "data.embedding_dim") -> "WordVectors":
    """The word vectors of `vocab` from the training texts, the one way every task gets them:
    word2vec trained on `train_tokens` (cached) or `pretrained` vectors loaded, then
    standardised per dimension over the training tokens. `dim_setting` names the setting
    to change when pre-trained vectors have another size."""
    if pretrained:
        kv = load_pretrained(pretrained)
        if kv.vector_size != dim:
            raise ValueError(f"{pretrained} has {kv.vector_size}-dimensional vectors but {dim_setting}={dim}: "
                             f"set {dim_setting}={kv.vector_size}")
    else:
        kv = train_word2vec(train_tokens, dim=dim, sg=int(sg), window=int(window), min_count=int(min_count),
                            epochs=int(epochs), seed=int(seed), cache_dir=cache_dir)
    return WordVectors.build(vocab, kv, train_tokens, standardize=standardize)


def load_pretrained(path: str | Path) -> KeyedVectors:
    """word2vec binary (.bin), word2vec text (with a 'count dim' header), GloVe text (no
    header), or a gensim KeyedVectors file (.kv)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"pre-trained word vectors not found: {path} (word2vec .bin/.txt, GloVe .txt or .kv)")
    if path.suffix == ".kv":
        return KeyedVectors.load(str(path))
    if path.suffix == ".bin" or path.name.endswith(".bin.gz"):
        return KeyedVectors.load_word2vec_format(str(path), binary=True, unicode_errors="replace")
    with open(path, encoding="utf8", errors="replace") as f:
        first = f.readline().split()
    has_header = len(first) == 2 and all(p.isdigit() for p in first)
    return KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=not has_header,
                                             unicode_errors="replace")


class WordVectors:
    """A vocabulary's embedding matrix (V, D), standardised per dimension over the
    training tokens. Rows of <pad>, <unk> and words without a vector are 0 (= the mean)."""

    def __init__(self, vocab: Vocabulary, matrix: torch.Tensor, known: torch.Tensor):
        self.vocab, self.matrix, self.known = vocab, matrix, known

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    @classmethod
    def build(cls, vocab: Vocabulary, kv: KeyedVectors, train_tokens: Sequence[list[str]],
              standardize: bool = True) -> "WordVectors":
        raw = np.zeros((len(vocab), kv.vector_size), dtype=np.float32)
        known = torch.zeros(len(vocab), dtype=torch.bool)
        for i, w in enumerate(vocab.itos[2:], start=2):
            if w in kv.key_to_index:
                raw[i] = kv[w]
                known[i] = True
        matrix = torch.from_numpy(raw)
        if standardize:
            # statistics weighted by how often each word occurs in the training texts
            ids = [vocab.stoi.get(t, vocab.unk_id) for tokens in train_tokens for t in tokens]
            counts = torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=len(vocab)).float()
            counts[~known] = 0  # <pad>, <unk> and words without a vector carry no statistics
            if counts.sum() == 0:
                raise ValueError("no training word has a word vector: check the vectors' language/casing")
            w = (counts / counts.sum())[:, None]
            mean = (w * matrix).sum(0)
            std = ((w * (matrix - mean) ** 2).sum(0)).sqrt().clamp_min(1e-6)
            matrix = torch.where(known[:, None], (matrix - mean) / std, torch.zeros_like(matrix))
        return cls(vocab, matrix, known)

    def unknown_words(self, tokens: Sequence[str]) -> list[str]:
        known = self._known_words()
        return [t for t in tokens if t not in known]

    def _known_words(self) -> frozenset:
        # a set, built once: per-token tensor indexing is slow over a whole corpus
        if getattr(self, "_known_set", None) is None:
            self._known_set = frozenset(w for w, k in zip(self.vocab.itos, self.known.tolist()) if k)
        return self._known_set

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return self.matrix[ids]

    def state_dict(self) -> dict:
        return {"vocab": self.vocab.state_dict(), "matrix": self.matrix, "known": self.known}

    @classmethod
    def from_state_dict(cls, state: dict) -> "WordVectors":
        return cls(Vocabulary.from_state_dict(state["vocab"]), state["matrix"], state["known"])
