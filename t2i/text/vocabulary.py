"""Vocabulary with <pad> = 0 and <unk> = 1, built from token counts."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import torch

PAD, UNK = "<pad>", "<unk>"


class Vocabulary:
    def __init__(self, words: Iterable[str]):
        self.itos = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], max_size: int | None = None, min_freq: int = 1,
              exclude: Iterable[str] = ()) -> "Vocabulary":
        """Most frequent words first (ties alphabetical, so the order is reproducible).
        `max_size` counts the two special tokens."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        for w in exclude:
            counts.pop(w, None)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - 2)]
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(self, tokens: list[str], max_len: int | None = None, keep_last: bool = False) -> list[int]:
        """Token ids, cut to max_len. keep_last=True keeps the last word when cutting
        (the source report's captions: words 1..n-1 plus the final word)."""
        ids = [self.stoi.get(t, 1) for t in tokens]
        if max_len is not None and len(ids) > max_len:
            ids = ids[: max_len - 1] + ids[-1:] if keep_last else ids[:max_len]
        return ids

    def pad(self, ids: list[int], max_len: int) -> torch.Tensor:
        out = torch.zeros(max_len, dtype=torch.long)
        out[: len(ids)] = torch.tensor(ids[:max_len], dtype=torch.long)
        return out

    def state_dict(self) -> dict:
        return {"itos": self.itos}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Vocabulary":
        return cls(state["itos"][2:])
