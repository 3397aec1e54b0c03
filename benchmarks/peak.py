"""The machine's practical arithmetic peak: the best FLOP/s of a large matrix product per
dtype and thread count. Every step's achieved FLOP/s is read against the peak of its own
dtype (bf16-mixed steps against the bf16 peak)."""
from __future__ import annotations

import time

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def gemm_flops(threads: int, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5,
               max_seconds: float = 20.0) -> float:
    """FLOP/s of an n x n matrix product (best of `repeats`) at `threads` torch threads.
    Stops early after `max_seconds`: an emulated dtype can be 100x slower than fp32."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        start = time.perf_counter()
        a @ b  # warm-up (and the measure of a dtype too slow to repeat)
        best = time.perf_counter() - start
        begun = time.perf_counter()
        for _ in range(repeats):
            if time.perf_counter() - begun > max_seconds:
                break
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2 * n ** 3 / best


def peaks(thread_counts: list[int], n: int = 2048) -> dict[str, float]:
    """{"peak.<dtype>.t<threads>.gflops": GFLOP/s} for fp32 and bf16 at each thread count."""
    out = {}
    for threads in thread_counts:
        for name, dtype in DTYPES.items():
            out[f"peak.{name}.t{threads}.gflops"] = gemm_flops(threads, dtype, n) / 1e9
    return out
