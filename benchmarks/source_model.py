"""bench.py's `seed` part: the source report's model (CondDCGANLSTM) at the Flickr settings:
where a step's time goes (phases, FLOPs against the GEMM peak) and its steps/s through the
Lightning step, at 1 and 2 threads."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import hydra
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import compose, lightning_img_per_s, path_overrides
from benchmarks.peak import gemm_flops
from benchmarks.steps import FLICKR8K_LENGTHS
from t2i.tasks.gan import bce


def seed_batch(args, words: int | None = None) -> dict:
    """A Flickr-sized caption batch: images in [-1, 1], standardised word vectors (400-d,
    as the data module's), lengths drawn from Flickr8k's (or all `words` long)."""
    g = torch.Generator().manual_seed(args.seed)
    n = args.batch_size
    if words:
        length = torch.full((n,), words)
    else:
        length = torch.multinomial(torch.tensor(FLICKR8K_LENGTHS, dtype=torch.float), n, True, generator=g) + 1
    return {"image": torch.rand(n, 3, args.image_size, args.image_size, generator=g) * 2 - 1,
            "word_vectors": torch.randn(n, 25, 400, generator=g), "length": length}


def seed_task(args, overrides: list[str] = ()):
    """CondDCGANLSTM at the full size (conf/model/cond_dcgan_lstm.yaml) in `experiment=flickr_cond_dcgan_lstm`."""
    cfg = compose(path_overrides(args) + ["experiment=flickr_cond_dcgan_lstm", "model=cond_dcgan_lstm",
                                          f"data.image_size={args.image_size}",
                                          f"data.batch_size={args.batch_size}", *overrides])
    torch.manual_seed(args.seed)
    return hydra.utils.instantiate(cfg.model)


class Phases:
    """Wall time (and FLOPs, when counting) per named phase of one step."""

    def __init__(self, count_flops: bool = False):
        self.seconds: dict[str, float] = {}
        self.flops: dict[str, int] = {}
        self.count_flops = count_flops

    def __call__(self, name: str, fn: Callable):
        start = time.perf_counter()
        if self.count_flops:
            with FlopCounterMode(display=False) as counter:
                out = fn()
            self.flops[name] = self.flops.get(name, 0) + counter.get_total_flops()
        else:
            out = fn()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return out


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().requires_grad_()


def seed_step_phases(task, batch: dict, phases: Phases) -> None:
    """One training step of CondDCGANLSTM (the maths of GANTask.training_step), cut at the
    word maps and the word outputs so each part's forward and backward is timed alone:
    the same operations as the step, the boundaries' gradients handed on by hand."""
    gen, disc = task.generator, task.discriminator
    opt_g, opt_d = task._bench_opts
    z = task.noise(batch["image"].shape[0], stream=1)
    maps = phases("word generator fwd", lambda: gen.draw_words(z, batch["word_vectors"], batch["length"]))
    maps_in = leaf(maps)
    # the step keeps the ConvLSTM's states; each loss turns the outputs it uses into images
    outputs = phases("ConvLSTM fwd", lambda: gen.states(maps_in, batch["length"]))
    outs = leaf(outputs)
    # D step (states detached)
    opt_d.zero_grad(set_to_none=True)
    d_loss, _ = phases("D step: D fwd (real + word outputs)", lambda: task.discriminator_loss(batch, outs.detach()))
    phases("D step: backward", d_loss.backward)
    phases("optimizer steps", opt_d.step)
    # G step: D's weights frozen, as toggle_optimizer does
    opt_g.zero_grad(set_to_none=True)
    for p in disc.parameters():
        p.requires_grad_(False)
    judged, weight = phases("G step: image head on word outputs", lambda: task.judged_outputs(batch, outs, stream=2))
    logits = phases("G step: D fwd on word outputs", lambda: disc(judged))
    dist = phases("G step: L2 term fwd", lambda: task.distance(batch, outs))
    loss = bce(logits, 1.0, weight) + task.l2_weight * dist
    phases("G step: backward through D and L2", loss.backward)
    for p in disc.parameters():
        p.requires_grad_(True)
    phases("ConvLSTM bwd", lambda: outputs.backward(outs.grad))
    phases("word generator bwd", lambda: maps.backward(maps_in.grad))
    phases("optimizer steps", opt_g.step)


def profile_seed(args, task, batch: dict, repeats: int = 3) -> tuple[dict, dict]:
    task.train()
    task._bench_opts = (task.optimizer_g(params=task.generator.parameters()),
                        task.optimizer_d(params=task.discriminator.parameters()))
    counting = Phases(count_flops=True)
    seed_step_phases(task, batch, counting)  # also the warm-up
    runs = []
    for _ in range(repeats):
        timed = Phases()
        seed_step_phases(task, batch, timed)
        runs.append(timed.seconds)
    seconds = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return seconds, counting.flops


def bench_seed(args, results: dict) -> None:
    """The source report's model (CondDCGANLSTM) at the Flickr settings: where a step's time goes,
    and its steps/s through the Lightning step, at 1 and 2 threads, with Flickr8k's
    caption lengths and with every caption 25 words long."""
    for threads in args.seed_threads:
        torch.set_num_threads(threads)
        peak = gemm_flops(threads)
        results[f"seed.t{threads}.gemm_peak_gflops"] = peak / 1e9
        for words in (None, 25):
            key = f"seed.t{threads}.{'flickr_lengths' if words is None else 'words25'}"
            batch = seed_batch(args, words)
            task = seed_task(args, args.seed_overrides)
            seconds, flops = profile_seed(args, task, batch)
            total, total_flops = sum(seconds.values()), sum(flops.values())
            print(f"seed: {threads} thread(s), {key.split('.')[-1]}: {int((batch['length'] - 1).sum())} word "
                  f"outputs judged; GEMM peak {peak / 1e9:.1f} GFLOP/s", flush=True)
            print(f"  {'phase':<40} {'s':>7} {'share':>6} {'GFLOP':>7} {'GFLOP/s':>8} {'% peak':>6}")
            for name, sec in seconds.items():
                f = flops.get(name, 0)
                print(f"  {name:<40} {sec:7.3f} {sec / total:6.1%} {f / 1e9:7.1f} {f / sec / 1e9:8.1f} "
                      f"{f / sec / peak:6.1%}")
                results[f"{key}.{name}.s"] = sec
            print(f"  {'total':<40} {total:7.3f} {1:6.1%} {total_flops / 1e9:7.1f} "
                  f"{total_flops / total / 1e9:8.1f} {total_flops / total / peak:6.1%}", flush=True)
            results[f"{key}.profile_step_s"] = total
            results[f"{key}.gflop_per_step"] = total_flops / 1e9
            results[f"{key}.pct_gemm_peak"] = total_flops / total / peak
            step = lightning_img_per_s(seed_task(args, args.seed_overrides), batch, args, args.precision) \
                / args.batch_size
            results[f"{key}.steps_per_s"] = step
            print(f"  Lightning training_step: {step:.3f} steps/s", flush=True)
