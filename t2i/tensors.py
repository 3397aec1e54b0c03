"""Two tensor chores every layer needs, written once: a batch to a device, and a module
in eval mode (no gradients) for a block, put back in the mode it was in."""
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
