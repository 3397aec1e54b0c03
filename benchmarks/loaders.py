"""bench.py's `loader` part: every data module's loader from its cache, in samples/s,
against the fastest step measured; and a synthetic JPEG set through the memory-mapped cache."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import hydra
import numpy as np
from hydra.errors import InstantiationException
from omegaconf import open_dict
from PIL import Image

from benchmarks.common import NO_EXPERIMENT, ROOT, compose, path_overrides
from t2i.data.base import BaseDataModule, DatasetNotFoundError, ImageArrayDataset
from t2i.data.cache import cached_images


def data_configs() -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / "data").glob("*.yaml"))


def datamodule_from_config(args, name: str):
    """A data module as train.py builds it, at the bench's batch size, and at its image
    size where the data module supports it (else at its configured one)."""
    root = [f"data.root={args.data_root[name]}"] if name in args.data_root else []
    cfg = compose(path_overrides(args) + [NO_EXPERIMENT, f"data={name}", f"data.batch_size={args.batch_size}"]
                  + root)
    with open_dict(cfg):
        if args.quick and "splits" in cfg.data:
            cfg.data.splits = [4 * args.batch_size, args.batch_size, args.batch_size]
    if "image_size" in cfg.data and cfg.data.image_size != args.image_size:
        try:
            return hydra.utils.instantiate(cfg.data, image_size=args.image_size)
        except InstantiationException as err:
            if not isinstance(err.__cause__, ValueError):
                raise
            print(f"  at its configured image size {cfg.data.image_size}: {err.__cause__}", flush=True)
    return hydra.utils.instantiate(cfg.data)


def missing_data(err: BaseException) -> bool:
    """A dataset that is not on disk (possibly wrapped by Hydra's InstantiationException)."""
    while err is not None:
        if isinstance(err, (DatasetNotFoundError, FileNotFoundError)):
            return True
        err = err.__cause__
    return False


def synthetic_jpeg_datamodule(args, folder: Path, results: dict):
    """JPEGs of mixed sizes (as Flickr's) decoded through `cached_images`: measures the
    memory-mapped cache path even without a real dataset."""
    rng = np.random.default_rng(args.seed)
    n = 4 * args.batch_size if args.quick else max(args.synthetic_images, args.batch_size)
    paths = []
    for i in range(n):
        w, h = [(500, 375), (333, 500), (640, 480)][i % 3]
        base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)  # smooth-ish, JPEG-like content
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(base).resize((w, h), Image.BILINEAR).save(path, quality=90)
        paths.append(path)
    cache = folder / "cache"
    start = time.perf_counter()
    cached_images(paths, args.image_size, cache, "bench_synthetic")
    results["loader.synthetic_jpeg.cache_build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    images, kept = cached_images(paths, args.image_size, cache, "bench_synthetic")
    results["loader.synthetic_jpeg.cache_open_s"] = time.perf_counter() - start

    class SyntheticJpegDataModule(BaseDataModule):
        def setup(self, stage=None):
            self.train_set = ImageArrayDataset(images)

    return SyntheticJpegDataModule(batch_size=args.batch_size, seed=args.seed)


def batch_len(batch) -> int:
    if isinstance(batch, dict):
        return len(batch["image"]) if "image" in batch else len(next(iter(batch.values())))
    return len(batch[0])


def samples_per_s(loader, max_batches: int, max_seconds: float = 20.0) -> tuple[float, int]:
    """Items per second over max_batches batches after a first (untimed) one, going
    round more epochs when a split is smaller than that."""
    it = iter(loader)
    next(it)
    count = batches = 0
    start = time.perf_counter()
    while batches < max_batches and time.perf_counter() - start < max_seconds:
        for batch in it:
            count, batches = count + batch_len(batch), batches + 1
            if batches >= max_batches:
                break
        it = iter(loader)
    return count / (time.perf_counter() - start), count


def loader_names(args) -> list[str]:
    if args.loaders == "none":
        return []
    if args.loaders == "all":
        return data_configs() + ["synthetic_jpeg"]
    return [n.strip() for n in args.loaders.split(",") if n.strip()]


def bench_loaders(args, results: dict) -> None:
    steps = [v for k, v in results.items() if k in ("dcgan.lightning_img_per_s", "dcgan.plain_img_per_s",
                                                     "t2i.img_per_s") and v]
    consumer = max(steps) if steps else None
    results["loader.step_img_per_s"] = consumer
    with tempfile.TemporaryDirectory(prefix="t2i-bench-") as tmp:
        for name in loader_names(args):
            print(f"loader: {name}", flush=True)
            try:
                if name == "synthetic_jpeg":
                    dm = synthetic_jpeg_datamodule(args, Path(tmp), results)
                else:
                    dm = datamodule_from_config(args, name)
                dm.prepare_data()
                start = time.perf_counter()
                dm.setup("fit")  # builds (first time) or opens the cache
                results[f"loader.{name}.setup_s"] = time.perf_counter() - start
                rate, count = samples_per_s(dm.train_dataloader(), args.loader_batches)
            except Exception as err:  # one loader's failure must not lose the other figures
                root = err
                while root.__cause__ is not None:  # Hydra wraps the data module's own error
                    root = root.__cause__
                first_line = f"{type(root).__name__}: " + (str(root).splitlines() or [""])[0]
                kind = "skipped" if missing_data(err) else "error"
                print(f"  {kind}: {first_line}", flush=True)
                results[f"loader.{name}.{kind}"] = first_line
                continue
            results[f"loader.{name}.samples_per_s"] = rate
            results[f"loader.{name}.samples_timed"] = count
            if consumer:
                results[f"loader.{name}.x_step"] = rate / consumer
