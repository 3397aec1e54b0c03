"""Seeded splits, one way for every data module: a permutation of the items drawn from
`seed`, cut into consecutive parts (the first `sizes[0]` of it, the next `sizes[1]`, ...,
the rest last). Published numbers depend on these draws: tests/test_splits.py pins them."""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np


def carve(n: int, sizes: Sequence[int], seed: int | Sequence[int], sort: bool = True) -> list[np.ndarray]:
    """Disjoint index arrays over range(n): len(sizes) + 1 parts, the last one the rest.
    sort=False keeps the permuted order inside each part (a shuffled training set)."""
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *sizes])
    parts = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])] + [order[bounds[-1]:]]
    return [np.sort(p) for p in parts] if sort else parts


def pick(keys: Sequence[str], count: int, seed: int) -> set[str]:
    """`count` of the keys, drawn by `seed` (over the sorted keys: their listing order does not matter)."""
    keys = sorted(keys)
    return {keys[i] for i in carve(len(keys), [count], seed)[0]}


def split_count(size: int | float, n: int, key: str = "data.val_size", minimum: int = 0,
                leave_one: bool = True) -> int:
    """A split size given as a count (>= minimum) or a fraction in (0, 1) of n items;
    leave_one: at most n - 1, so the part it is carved from keeps an item."""
    if isinstance(size, float) and 0 < size < 1:
        count = max(1, round(size * n))
    elif isinstance(size, numbers.Real) and float(size).is_integer() and size >= minimum:
        count = int(size)
    else:
        raise ValueError(f"{key} must be a count >= {minimum} or a fraction in (0, 1), got {size!r}")
    return min(count, max(0, n - 1)) if leave_one else count
