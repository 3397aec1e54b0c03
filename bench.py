"""Speed benchmark: python bench.py [--precision bf16-mixed] [--channels-last] [--compile] ...

Times, in one run on one machine:
  dcgan   the DCGAN training step (D + G) through the project's LightningModule and a
          Lightning Trainer, against the canonical loop of pytorch/examples' dcgan over
          the same Generator/Discriminator (interleaved A B B A ..., medians);
  t2i     the text-to-image models' step (--t2i-models, default gan_cls; e.g.
          gan_cls,df_gan,cond_dcgan_lstm to compare GAN-CLS, DF-GAN and the source report's model);
  loader  every data module's loader from its cache, in samples/s, against the fastest
          step measured (how many times faster the data comes than the step eats it);
  amp     on a GPU: bf16-mixed + channels_last against fp32 (Lightning step).
Prints a table and writes bench.json (flat keys such as `dcgan.ratio`). See docs/scaling.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import compose, img_per_s, lightning_img_per_s, path_overrides, step_loader, sync  # noqa: E402
from benchmarks.peak import gemm_flops, peaks  # noqa: E402
from benchmarks.steps import FLICKR8K_LENGTHS, bench_steps  # noqa: E402
from benchmarks.steps import MODELS as STEP_MODELS  # noqa: E402

PRECISIONS = ("32", "16-mixed", "bf16-mixed")


# ------------------------------------------------------------------ arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="32", choices=PRECISIONS)
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (nets and images)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator and discriminator")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=64, choices=[32, 64])
    p.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    p.add_argument("--repeats", type=int, default=5, help="interleaved measurements per path (median kept)")
    p.add_argument("--amp-compare", choices=["auto", "on", "off"], default="auto",
                   help="also time fp32 vs bf16-mixed+channels_last (auto: on a GPU only)")
    p.add_argument("--loaders", default="all",
                   help="comma-separated data configs (conf/data/<name>.yaml) and/or synthetic_jpeg; "
                        "'all': every data config plus synthetic_jpeg; 'none': skip")
    p.add_argument("--loader-batches", type=int, default=50, help="batches timed per loader (at most one epoch)")
    p.add_argument("--synthetic-images", type=int, default=512, help="JPEGs written for the synthetic_jpeg loader")
    p.add_argument("--data-dir", default=os.environ.get("T2I_DATA", str(ROOT / "data")),
                   help="paths.data_dir for real datasets (those absent are skipped)")
    p.add_argument("--data-root", action="append", default=[], metavar="NAME=DIR",
                   help="data.root for one loader, e.g. flickr=/data/flickr8k (repeatable)")
    p.add_argument("--cache-dir", default=os.environ.get("T2I_CACHE", str(ROOT / ".cache")))
    p.add_argument("--t2i-models", default=T2I_MODEL,
                   help="comma-separated model configs (conf/model/<name>.yaml) timed on captioned shapes, "
                        "e.g. gan_cls,df_gan,cond_dcgan_lstm; the first also fills t2i.img_per_s")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: peak,steps,dcgan,t2i,seed,loaders")
    p.add_argument("--step-models", default=",".join(STEP_MODELS),
                   help="training steps measured against the peak: " + ",".join(STEP_MODELS))
    p.add_argument("--step-precisions", default="32,bf16-mixed", help="precisions of the 'steps' part")
    p.add_argument("--step-repeats", type=int, default=1, help="timed measurements per model and precision (median)")
    p.add_argument("--seed-threads", default="1,2", help="thread counts the source report's-model profile runs at")
    p.add_argument("--seed-overrides", default="", help="space-separated overrides for the source report's model "
                                                        "(e.g. 'model.d_word_samples=4')")
    p.add_argument("--quick", action="store_true", help="tiny datasets (a smoke test, not a measurement)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench.json")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible")
    if args.device == "cpu" and args.precision == "16-mixed":
        p.error("--precision 16-mixed needs a GPU; on CPU use bf16-mixed or 32")
    if min(args.batch_size, args.steps, args.repeats) < 1 or args.warmup < 1:
        p.error("--batch-size, --steps and --repeats must be >= 1, --warmup >= 1")
    args.skip = {s for s in args.skip.split(",") if s}
    args.seed_threads = [int(t) for t in args.seed_threads.split(",") if t]
    args.step_models = [m for m in args.step_models.split(",") if m]
    args.step_precisions = [p for p in args.step_precisions.split(",") if p]
    if unknown := set(args.step_models) - set(STEP_MODELS):
        p.error(f"--step-models: unknown {sorted(unknown)}; choose from {','.join(STEP_MODELS)}")
    if unknown := set(args.step_precisions) - {"32", "bf16-mixed"}:
        p.error(f"--step-precisions: unknown {sorted(unknown)}; choose from 32,bf16-mixed")
    args.seed_overrides = args.seed_overrides.split()
    if any("=" not in r for r in args.data_root):
        p.error("--data-root takes NAME=DIR, e.g. --data-root coco=/data/coco")
    args.data_root = dict(r.split("=", 1) for r in args.data_root)
    return args


def quiet() -> None:
    """Lightning's banners and the single-process loader warnings are noise here."""
    import pytorch_lightning  # noqa: F401 (creates its loggers, which set their own levels)

    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("pytorch_lightning", "lightning", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*log_every_n_steps.*")


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"32": None, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}[precision]


NO_EXPERIMENT = "~experiment"  # the data and model configs as their own files define them


# ------------------------------------------------------------------ DCGAN
def random_images(args, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(args.seed)
    images = torch.rand(args.batch_size, channels, args.image_size, args.image_size, generator=g) * 2 - 1
    return images.contiguous(memory_format=torch.channels_last) if args.channels_last else images


def prepare_nets(nets: list[torch.nn.Module], args, channels_last: bool) -> list[torch.nn.Module]:
    out = []
    for net in nets:
        net = net.to(args.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        out.append(torch.compile(net) if args.compile else net)
    return out


def dcgan_task(args, channels_last: bool):
    """The project's DCGAN task, built from conf/model/dcgan.yaml at the bench's sizes
    (3 channels, ngf = ndf = 64, as pytorch/examples)."""
    import hydra

    cfg = compose(path_overrides(args) + [NO_EXPERIMENT, f"data.image_size={args.image_size}", "model.channels=3",
                                          "model.ngf=64", "model.ndf=64"])
    torch.manual_seed(args.seed)
    task = hydra.utils.instantiate(cfg.model)
    task.generator, task.discriminator = prepare_nets([task.generator, task.discriminator], args, channels_last)
    return task


def time_dcgan_lightning(args, precision: str | None = None, channels_last: bool | None = None) -> float:
    precision = precision or args.precision
    channels_last = args.channels_last if channels_last is None else channels_last
    images = random_images(args)
    images = images.contiguous(memory_format=torch.channels_last) if channels_last else images.contiguous()
    return lightning_img_per_s(dcgan_task(args, channels_last), {"image": images}, args, precision)


def time_dcgan_plain(args) -> float:
    """pytorch/examples' dcgan loop (main.py), over the same nets, optimiser, uniform z,
    batch and precision. D ends in a logit here, so BCEWithLogits replaces Sigmoid+BCELoss."""
    from t2i.nets.dcgan import Discriminator, Generator

    device, nz, real_label, fake_label = torch.device(args.device), 100, 1.0, 0.0
    torch.manual_seed(args.seed)
    netG, netD = prepare_nets([Generator(nz, 64, 3, args.image_size), Discriminator(3, 64, args.image_size)],
                              args, args.channels_last)
    netG.train(), netD.train()
    criterion = torch.nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    dtype = autocast_dtype(args.precision)
    scaler = torch.amp.GradScaler(args.device, enabled=dtype == torch.float16)

    def autocast():
        return torch.autocast(args.device, dtype=dtype, enabled=dtype is not None)

    n = args.warmup + args.steps
    stamps = []
    for data in step_loader({"image": random_images(args)}, n):
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real_cpu = data["image"].to(device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=torch.float, device=device)
        with autocast():
            output = netD(real_cpu).view(-1)
            errD_real = criterion(output.float(), label)
        scaler.scale(errD_real).backward()
        D_x = output.float().sigmoid().mean().item()  # noqa: F841 (the example prints it)
        noise = torch.rand(batch_size, nz, 1, 1, device=device) * 2 - 1
        with autocast():
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach()).view(-1)
            errD_fake = criterion(output.float(), label)
        scaler.scale(errD_fake).backward()
        D_G_z1 = output.float().sigmoid().mean().item()  # noqa: F841
        scaler.step(optimizerD)
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        with autocast():
            output = netD(fake).view(-1)
            errG = criterion(output.float(), label)
        scaler.scale(errG).backward()
        D_G_z2 = output.float().sigmoid().mean().item()  # noqa: F841
        scaler.step(optimizerG)
        scaler.update()
        sync(args.device)
        stamps.append(time.perf_counter())
    return img_per_s(stamps, args.warmup, args.batch_size)


def interleaved(paths: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each timing `repeats` times in A B, B A, A B ... order: on a shared machine the
    load drifts, and alternating the order spreads the drift over both."""
    runs = {name: [] for name in paths}
    names = list(paths)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(paths[name]())
            print(f"  {name:<24} run {r + 1}/{repeats}: {runs[name][-1]:8.1f} img/s", flush=True)
    return runs


def bench_dcgan(args, results: dict) -> None:
    print(f"dcgan: batch {args.batch_size}, {args.image_size}x{args.image_size}, precision {args.precision}"
          f"{', channels_last' if args.channels_last else ''}{', compiled' if args.compile else ''}", flush=True)
    runs = interleaved({"lightning": lambda: time_dcgan_lightning(args), "plain": lambda: time_dcgan_plain(args)},
                       args.repeats)
    lightning, plain = statistics.median(runs["lightning"]), statistics.median(runs["plain"])
    paired = statistics.median(a / b for a, b in zip(runs["lightning"], runs["plain"]))
    results.update({"dcgan.lightning_img_per_s": lightning, "dcgan.plain_img_per_s": plain,
                    "dcgan.ratio": lightning / plain, "dcgan.paired_ratio": paired,
                    "dcgan.lightning_runs": runs["lightning"], "dcgan.plain_runs": runs["plain"]})


def bench_amp(args, results: dict) -> None:
    """fp32 against bf16-mixed + channels_last through the Lightning step (the GPU goal: >= 2x)."""
    print("amp: fp32 vs bf16-mixed + channels_last (Lightning step)", flush=True)
    runs = interleaved({"fp32": lambda: time_dcgan_lightning(args, "32", False),
                        "bf16_channels_last": lambda: time_dcgan_lightning(args, "bf16-mixed", True)},
                       args.repeats)
    fp32, bf16 = statistics.median(runs["fp32"]), statistics.median(runs["bf16_channels_last"])
    results.update({"dcgan.fp32_img_per_s": fp32, "dcgan.bf16_channels_last_img_per_s": bf16,
                    "dcgan.amp_speedup": bf16 / fp32})


# ------------------------------------------------------------------ text-to-image
T2I_EXPERIMENT, T2I_MODEL = "shapes_text_to_image", "gan_cls"  # the experiment users train (GAN-CLS)


def t2i_config(args, model: str = T2I_MODEL):
    return compose(path_overrides(args) + [f"experiment={T2I_EXPERIMENT}", f"model={model}",
        f"data.image_size={args.image_size}", f"data.batch_size={args.batch_size}", "data.num_workers=0",
        f"data.splits=[{4 * args.batch_size},{args.batch_size},{args.batch_size}]"])


def time_t2i(args, model: str = T2I_MODEL) -> float:
    """The text-to-image task's step on one real batch of captioned shapes (word vectors
    from the data module's word2vec), at the bench's batch and image size."""
    import hydra

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


# ------------------------------------------------------------------ the source report's model at Flickr settings
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
    """CondDCGANLSTM as `experiment=flickr_cond_dcgan_lstm` builds it (conf/model/cond_dcgan_lstm.yaml)."""
    import hydra

    cfg = compose(path_overrides(args) + ["experiment=flickr_cond_dcgan_lstm", f"data.image_size={args.image_size}",
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
    from t2i.tasks.gan import bce

    gen, disc = task.generator, task.discriminator
    opt_g, opt_d = task._bench_opts
    z = task.noise(batch["image"].shape[0], stream=1)
    maps = phases("word generator fwd", lambda: gen.draw_words(z, batch["word_vectors"], batch["length"]))
    maps_in = leaf(maps)
    outputs = phases("ConvLSTM + to_image fwd", lambda: gen.draw_outputs(maps_in, batch["length"]))
    outs = leaf(outputs)
    # D step (outputs detached)
    opt_d.zero_grad(set_to_none=True)
    d_loss, _ = phases("D step: D fwd (real + word outputs)", lambda: task.discriminator_loss(batch, outs.detach()))
    phases("D step: backward", d_loss.backward)
    phases("optimizer steps", opt_d.step)
    # G step: D's weights frozen, as toggle_optimizer does
    opt_g.zero_grad(set_to_none=True)
    for p in disc.parameters():
        p.requires_grad_(False)
    judged, weight = task.judged_outputs(batch, outs, stream=2)
    logits = phases("G step: D fwd on word outputs", lambda: disc(judged))

    def distance():
        diff = (type(gen).final(outs, batch["length"]) - batch["image"]).flatten(1)
        return diff.norm(dim=1).mean() / diff.shape[1] ** 0.5

    dist = phases("G step: L2 term fwd", distance)
    loss = bce(logits, 1.0, weight) + task.l2_weight * dist
    phases("G step: backward through D and L2", loss.backward)
    for p in disc.parameters():
        p.requires_grad_(True)
    phases("ConvLSTM + to_image bwd", lambda: outputs.backward(outs.grad))
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


# ------------------------------------------------------------------ loaders
def data_configs() -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / "data").glob("*.yaml"))


def datamodule_from_config(args, name: str):
    """A data module as train.py builds it, at the bench's batch size, and at its image
    size where the data module supports it (else at its configured one)."""
    import hydra
    from hydra.errors import InstantiationException
    from omegaconf import open_dict

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
    from t2i.data.base import DatasetNotFoundError

    while err is not None:
        if isinstance(err, (DatasetNotFoundError, FileNotFoundError)):
            return True
        err = err.__cause__
    return False


def synthetic_jpeg_datamodule(args, folder: Path, results: dict):
    """JPEGs of mixed sizes (as Flickr's) decoded through `cached_images`: measures the
    memory-mapped cache path even without a real dataset."""
    import numpy as np
    from PIL import Image

    from t2i.data.base import BaseDataModule, ImageArrayDataset
    from t2i.data.cache import cached_images

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


# ------------------------------------------------------------------ report
def memory(args, results: dict) -> None:
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if args.device == "cuda":
        results["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20


def table(results: dict) -> str:
    rows = []
    for key, value in results.items():
        if isinstance(value, list):
            value = ", ".join(f"{v:.1f}" for v in value)
        elif isinstance(value, float):
            value = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        rows.append((key, str(value)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    quiet()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    results: dict = {
        "config.device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "config.torch_threads": torch.get_num_threads(), "config.torch": torch.__version__,
        "config.precision": args.precision, "config.channels_last": args.channels_last,
        "config.compile": args.compile, "config.batch_size": args.batch_size, "config.image_size": args.image_size,
        "config.steps": args.steps, "config.warmup": args.warmup, "config.repeats": args.repeats,
    }
    if not {"peak", "steps"} <= args.skip:  # the steps are read against the peak
        results.update(peaks(sorted({1, torch.get_num_threads()}), n=256 if args.quick else 2048))
        print("peak: " + ", ".join(f"{k} {v:.1f}" for k, v in results.items() if k.startswith("peak.")), flush=True)
    if "steps" not in args.skip:
        bench_steps(args, results, results, args.step_models)
    if "dcgan" not in args.skip:
        bench_dcgan(args, results)
    if args.amp_compare == "on" or (args.amp_compare == "auto" and args.device == "cuda"):
        bench_amp(args, results)
    if "t2i" not in args.skip:
        bench_t2i(args, results)
    if "seed" not in args.skip:
        bench_seed(args, results)
    if "loaders" not in args.skip:
        bench_loaders(args, results)
    memory(args, results)
    print("\n" + table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {args.out}")
    return results


if __name__ == "__main__":
    main()
