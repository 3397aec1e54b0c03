"""Every trainable model's training step against the machine's peak: counted FLOPs
(torch's FLOP formulas over one step, `FlopCount`) over wall time, as a fraction of the matrix-product
peak of the step's own dtype, in fp32 and bf16-mixed, and the bf16 speed-up.

Each step runs on one repeated batch of the model's real input shapes (random values:
the arithmetic does not depend on them): the GANs and the other Lightning tasks through a
plain Trainer (the project's own step, Lightning's autocast included), the evaluation's
two classifiers (the matching judge, the domain classifier) through their own training
loops' maths under torch.autocast.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from benchmarks.common import compose, path_overrides, step_loader
from t2i.evaluation.domain import DomainClassifier
from t2i.evaluation.matching_nets import MatchingEvaluator

# Caption lengths of Flickr8k.token.txt's 40,460 captions (t2i.text.tokenize, max_words 25): how many
# have 1, 2, ..., 25 words (mean 10.8). The source report's model's batch draws its lengths from them.
FLICKR8K_LENGTHS = [2, 25, 177, 464, 1164, 2633, 3378, 3893, 4421, 4551, 4204, 3702, 3103, 2525, 1798,
                    1372, 934, 709, 489, 287, 192, 136, 102, 66, 133]
PRECISION_DTYPE = {"32": "fp32", "bf16-mixed": "bf16"}


def caption_batch(n: int, size: int, dim: int, g: torch.Generator, channels: int = 3) -> dict:
    """Images in [-1, 1], standardised word vectors (n, 25, dim), lengths drawn from Flickr8k's."""
    length = torch.multinomial(torch.tensor(FLICKR8K_LENGTHS, dtype=torch.float), n, True, generator=g) + 1
    return {"image": torch.rand(n, channels, size, size, generator=g) * 2 - 1,
            "word_vectors": torch.randn(n, 25, dim, generator=g), "length": length}


# --------------------------------------------------------------- the models
def lightning_model(args, overrides: list[str]) -> tuple[pl.LightningModule, dict]:
    """A model as train.py builds it (conf/), its config's data sizes."""
    cfg = compose(path_overrides(args) + overrides)
    torch.manual_seed(args.seed)
    return hydra.utils.instantiate(cfg.model), cfg


def t2i_model(model: str, width: str) -> Callable:
    def build(args, n: int):
        task, cfg = lightning_model(args, ["experiment=shapes_text_to_image", f"model={model}",
                                           f"data.image_size={args.image_size}"])
        g = torch.Generator().manual_seed(args.seed)
        return task, caption_batch(n, args.image_size, int(cfg.data.embedding_dim), g, int(cfg.data.channels))
    return build


def dcgan(args, n: int):
    task, _ = lightning_model(args, ["~experiment", f"data.image_size={args.image_size}", "model.channels=3",
                                     "model.ngf=64", "model.ndf=64"])
    return task, {"image": torch.rand(n, 3, args.image_size, args.image_size) * 2 - 1}


def report_model(args, n: int):
    task, cfg = lightning_model(args, ["experiment=flickr_cond_dcgan_lstm", "model=cond_dcgan_lstm",
                                       *args.seed_overrides])
    g = torch.Generator().manual_seed(args.seed)
    return task, caption_batch(n, int(cfg.data.image_size), int(cfg.data.embedding_dim), g)


def context_encoder(args, n: int):
    task, cfg = lightning_model(args, ["experiment=coco_context_encoder", "data.captions=none"])
    size = int(cfg.data.image_size)
    image = torch.rand(n, 3, size, size) * 2 - 1
    return task, {"image": image, "masked": image.clone()}


def sentiment_lstm(args, n: int):
    task, cfg = lightning_model(args, ["experiment=imdb_sentiment", "model.encoder=lstm",
                                       "model.embedding_init=random"])
    g = torch.Generator().manual_seed(args.seed)
    length = torch.randint(20, int(cfg.data.max_len) + 1, (n,), generator=g)
    tokens = torch.randint(2, int(cfg.data.vocab_size), (n, int(cfg.data.max_len)), generator=g)
    tokens[torch.arange(tokens.shape[1])[None, :] >= length[:, None]] = 0
    return task, {"tokens": tokens, "length": length, "label": torch.randint(0, 2, (n,), generator=g)}



LIGHTNING = {"dcgan": dcgan, "gan_cls": t2i_model("gan_cls", "ngf 32"),
             "df_gan_cpu": t2i_model("df_gan_cpu", "CPU width"), "df_gan": t2i_model("df_gan", "paper width"),
             "cond_dcgan_lstm": report_model, "context_encoder": context_encoder, "sentiment_lstm": sentiment_lstm}


def matching_step(args, n: int):
    """The matching judge's training step (t2i.evaluation.matching._train's maths), at its
    default settings: 32px images, 128 pairs (`n`), AdamW."""
    model = MatchingEvaluator(3, 32, vocab_size=2000)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    images, tokens = torch.rand(n, 3, 32, 32) * 2 - 1, torch.randint(1, 2000, (n, 25))
    length = torch.randint(5, 26, (n,))
    return model, opt, lambda: model.loss(images, tokens, length)


def domain_step(args, n: int):
    """The domain classifier's training step (t2i.evaluation.domain), on shapes' four heads."""
    heads = {"shape": 2, "size": 2, "fill": 2, "position": 5}
    model = DomainClassifier(3, heads)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    images = torch.rand(n, 3, 32, 32) * 2 - 1
    targets = {k: torch.randint(0, c, (n,)) for k, c in heads.items()}
    return model, opt, lambda: sum(F.cross_entropy(out, targets[k]) for k, out in model(images).items())


PLAIN = {"matching_judge": matching_step, "domain_classifier": domain_step}
MODELS = (*LIGHTNING, *PLAIN)


# --------------------------------------------------------------- timing
class FlopCount(TorchDispatchMode):
    """torch's FLOP formulas (matrix products, convolutions, attention) summed over every op
    dispatched. Not FlopCounterMode: its per-module tracking breaks `autograd.grad`, which
    DF-GAN's MA-GP and GAN-CLS's R1 call inside the step. Ops without a formula (the fused
    CPU LSTM) count 0."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def lightning_steps(task, batch: dict, steps: int, precision: str, flops: bool = False) -> list[float]:
    """End times of `steps` training steps through a plain Trainer (optionally under a FLOP counter)."""
    stamps: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            stamps.append(time.perf_counter())

    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=steps, max_epochs=-1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[Clock()], use_distributed_sampler=False, log_every_n_steps=50)
    trainer.fit(task, train_dataloaders=step_loader(batch, steps))
    return stamps


def lightning_measure(builder, args, precision: str) -> tuple[float, float]:
    """(FLOPs per step, seconds per step) of a Lightning task's training step."""
    task, batch = builder(args, args.batch_size)
    with FlopCount() as counter:
        lightning_steps(task, batch, 1, precision)
    flops = counter.total
    task, batch = builder(args, args.batch_size)  # fresh weights and optimizers for the timing
    stamps = lightning_steps(task, batch, args.warmup + args.steps, precision)
    return flops, (stamps[-1] - stamps[args.warmup - 1]) / args.steps


def plain_measure(builder, args, precision: str) -> tuple[float, float]:
    """(FLOPs per step, seconds per step) of a plain training loop's step under autocast."""
    model, opt, loss_fn = builder(args, 16 if args.quick else 128)
    model.train()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else None

    def step():
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCount() as counter:
        step()
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return counter.total, (time.perf_counter() - start) / args.steps


def measure(name: str, args, precision: str) -> tuple[float, float]:
    if name in LIGHTNING:
        return lightning_measure(LIGHTNING[name], args, precision)
    return plain_measure(PLAIN[name], args, precision)


def bench_steps(args, results: dict, peaks: dict[str, float], models: list[str]) -> None:
    """Per model and precision: step seconds, GFLOP per step, achieved GFLOP/s and its
    fraction of the same dtype's peak at the current thread count; then bf16's speed-up."""
    threads = torch.get_num_threads()
    print(f"steps: {threads} thread(s); peak fp32 {peaks.get(f'peak.fp32.t{threads}.gflops', 0):.1f}, "
          f"bf16 {peaks.get(f'peak.bf16.t{threads}.gflops', 0):.1f} GFLOP/s", flush=True)
    print(f"  {'model':<20} {'precision':<10} {'s/step':>8} {'GFLOP':>8} {'GFLOP/s':>8} {'% peak':>7}")
    for name in models:
        seconds = {}
        for precision in args.step_precisions:
            try:
                runs = [measure(name, args, precision) for _ in range(args.step_repeats)]
            except Exception as err:  # one model's failure must not lose the others' figures
                print(f"  {name:<20} {precision:<10} error: {type(err).__name__}: {err}", flush=True)
                results[f"steps.{name}.{precision}.error"] = f"{type(err).__name__}: {err}"
                continue
            flops, sec = runs[0][0], statistics.median(r[1] for r in runs)
            peak = peaks.get(f"peak.{PRECISION_DTYPE[precision]}.t{threads}.gflops")
            # None, not 0, where torch's counter has no formula for the step's main op (the fused LSTM)
            achieved = flops / sec / 1e9 if flops else None
            key = f"steps.{name}.{precision}"
            results.update({f"{key}.s_per_step": sec, f"{key}.gflop_per_step": flops / 1e9 if flops else None,
                            f"{key}.gflops": achieved,
                            f"{key}.pct_peak": achieved / peak if peak and achieved else None})
            seconds[precision] = sec
            share = f"{achieved / peak:7.1%}" if peak and achieved else f"{'-':>7}"
            rate = f"{achieved:8.1f}" if achieved else f"{'-':>8}"
            print(f"  {name:<20} {precision:<10} {sec:8.3f} {flops / 1e9:8.2f} {rate} {share}", flush=True)
        if "32" in seconds and "bf16-mixed" in seconds:
            results[f"steps.{name}.bf16_speedup"] = seconds["32"] / seconds["bf16-mixed"]
            print(f"  {name:<20} bf16-mixed speed-up {seconds['32'] / seconds['bf16-mixed']:.2f}x", flush=True)
