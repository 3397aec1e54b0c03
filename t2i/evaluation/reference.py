"""Real-image features of a split, computed once per protocol and cached: the key holds
the dataset and its settings, the split, the image count, the image size and the feature
network, so a number is never compared against another protocol's reference."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from t2i.atomic_files import atomic_save, load_cache
from t2i.data.batches import split_dataset, split_images
from t2i.evaluation.domain import cache_key
from t2i.safe_load import load_torch

log = logging.getLogger("t2i")


def reference_features(space, datamodule, split: str, count: int, cache_dir, batch_size: int = 100
                       ) -> torch.Tensor:
    """(n, D) features of `count` real images of `split` spread over it (`eval_batches`) in
    `space` (n = min(count, split size))."""
    n = min(int(count), len(split_dataset(datamodule, split)))
    key = dict(data=type(datamodule).__name__, settings=cache_key(datamodule), split=split, count=n, subset="spread",
               size=int(getattr(datamodule, "image_size", 0)), space=space.name, network=space.fingerprint)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    safe = space.name.replace(":", "-").replace("/", "-")
    path = Path(cache_dir) / "reference" / f"{safe}-{split}{n}-{digest}.pt"
    stored = load_cache(path, load_torch)  # no code runs: a cache with anything else is rebuilt
    if stored is not None:
        if stored.get("key") == key:
            return stored["features"].double()
    images = split_images(datamodule, split, n, batch_size)
    features = space.extract(images)
    atomic_save({"key": key, "features": features.float()}, path)
    log.info("reference features cached: %s (%d %s images in %s)", path, n, split, space.name)
    return features
