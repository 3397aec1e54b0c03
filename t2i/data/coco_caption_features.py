"""MSCOCO captions as one feature vector per image, for the inpainting models: a binary
bag of the `bow_size` most frequent content words, or a mean of word2vec vectors."""
from __future__ import annotations

import torch
from gensim.parsing.preprocessing import STOPWORDS

from t2i.text import Vocabulary, WordVectors, tokenize


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
