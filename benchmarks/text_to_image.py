"""bench.py's `t2i` part: the text-to-image models' training step on captioned shapes
(--t2i-models, default gan_cls), at the bench's batch and image size."""
from __future__ import annotations

import statistics

import hydra
import torch

from benchmarks.common import compose, lightning_img_per_s, path_overrides

T2I_EXPERIMENT, T2I_MODEL = "shapes_text_to_image", "gan_cls"  # the experiment users train (GAN-CLS)


def t2i_config(args, model: str = T2I_MODEL):
    return compose(path_overrides(args) + [f"experiment={T2I_EXPERIMENT}", f"model={model}",
        f"data.image_size={args.image_size}", f"data.batch_size={args.batch_size}", "data.num_workers=0",
        f"data.splits=[{4 * args.batch_size},{args.batch_size},{args.batch_size}]"])


def time_t2i(args, model: str = T2I_MODEL) -> float:
    """The text-to-image task's step on one real batch of captioned shapes (word vectors
    from the data module's word2vec), at the bench's batch and image size."""
    cfg = t2i_config(args, model)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    if args.channels_last:
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    torch.manual_seed(args.seed)
    task = hydra.utils.instantiate(cfg.model)
    if args.channels_last:
        task = task.to(memory_format=torch.channels_last)
    return lightning_img_per_s(task, batch, args, args.precision)


def bench_t2i(args, results: dict) -> None:
    models = [m.strip() for m in args.t2i_models.split(",") if m.strip()] or [T2I_MODEL]
    for i, model in enumerate(models):
        first = i == 0  # the first model also fills the plain t2i.* keys (what the loaders compare with)
        print(f"t2i: {model} on captioned shapes, batch {args.batch_size}, {args.image_size}x{args.image_size}",
              flush=True)
        try:
            runs = [time_t2i(args, model) for _ in range(max(1, (args.repeats + 1) // 2))]
        except Exception as err:  # another part's bug must not lose the DCGAN and loader figures
            print(f"  error: {type(err).__name__}: {err}", flush=True)
            results[f"t2i.{model}.img_per_s"] = None
            if first:
                results.update({"t2i.img_per_s": None, "t2i.error": f"{type(err).__name__}: {err}"})
            continue
        for j, run in enumerate(runs):
            print(f"  {model:<24} run {j + 1}/{len(runs)}: {run:8.1f} img/s", flush=True)
        results[f"t2i.{model}.img_per_s"] = statistics.median(runs)
        if first:
            results.update({"t2i.img_per_s": statistics.median(runs), "t2i.model": model, "t2i.runs": runs})
