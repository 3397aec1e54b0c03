"""The tensor chores every layer needs, written once: a batch to a device; a module in eval
mode (no gradients) for a block, put back in the mode it was in; torch's CPU threads for a
block, put back after; the one seed formula of derived streams; and a seeded block that
leaves the caller's global random state as it was."""
from __future__ import annotations

from contextlib import contextmanager

import torch


def to_device(batch: dict, device) -> dict:
    """The batch's tensors on `device`; captions and other values as they are."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@contextmanager
def evaluating(module: torch.nn.Module):
    """`with evaluating(model):` eval mode and no autograd inside; the module's own
    train/eval mode is restored after, even when the block raises."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


def derived_seed(seed: int, k: int) -> int:
    """The seed of stream `k` of a run seeded `seed` (an epoch's order, a step's noise, ...):
    the one formula, so no two streams of a run share a seed by accident."""
    return seed * 1_000_003 + k


@contextmanager
def seeded_rng(seed: int):
    """`with seeded_rng(seed):` torch's global generators (CPU and CUDA) seeded with `seed`
    inside; the caller's random state is back afterwards, so a cached network and a freshly
    trained one leave a run's randomness the same."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def torch_threads(threads: int | None):
    """`with torch_threads(n):` torch's intra-op CPU threads set to n inside (None: as they
    are); the previous setting comes back afterwards, even when the block raises."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
