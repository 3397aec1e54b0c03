"""bench.py's `dcgan` and `amp` parts: the DCGAN training step through the project's
LightningModule and a Lightning Trainer, against pytorch/examples' canonical dcgan loop over
the same nets (interleaved A B B A ..., medians); on a GPU, bf16-mixed + channels_last
against fp32."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import hydra
import torch

from benchmarks.common import NO_EXPERIMENT, compose, img_per_s, lightning_img_per_s, path_overrides, step_loader, sync
from t2i.nets.dcgan import Discriminator, Generator


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"32": None, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}[precision]


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
