"""`trainer.precision=auto`: bf16-mixed where the hardware computes bf16 natively, fp32
elsewhere, decided once at start and logged in one line.

Why not bf16 everywhere: a CPU without bf16 instructions emulates it. Measured with
torch 2.14.1 on one thread: a 1024x1024 matrix product ran 63 GFLOP/s in fp32 and
0.9 GFLOP/s in bf16 on an AVX2-only EPYC (70x slower), against 94 and 209 GFLOP/s on a
Zen 4 EPYC with AVX512-BF16 (2.2x faster). docs/scaling.md has the table.
"""
from __future__ import annotations

import logging
import platform

import torch

log = logging.getLogger("t2i")

# /proc/cpuinfo flags of CPUs whose matrix units take bf16 directly: Intel Cooper Lake and
# AMD Zen 4 on (AVX512-BF16), Intel Sapphire Rapids on (AMX); Arm's BF16 extension.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The feature flags the kernel lists for the first CPU (x86 `flags`, Arm `Features`);
    empty where there is no /proc/cpuinfo (macOS, Windows)."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def native_bf16_cpu(flags: set[str] | None = None) -> bool:
    """True when this CPU multiplies bf16 in hardware (see BF16_CPU_FLAGS); Apple silicon
    is not detected from /proc and stays False (fp32: the safe side)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(precision, accelerator: str = "cpu", flags: set[str] | None = None) -> tuple[str, str]:
    """The concrete Lightning precision for `trainer.precision` and why: `auto` becomes
    bf16-mixed on a CPU with native bf16, 32 on other CPUs; on a GPU bf16-mixed where CUDA
    supports bf16, else 16-mixed. Any other value is kept as given."""
    text = str(precision)
    if text != "auto":  # Lightning checks the other values when it builds the Trainer
        return text, "as set (trainer.precision)"
    if str(accelerator) in ("gpu", "cuda") or (str(accelerator) == "auto" and torch.cuda.is_available()):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16-mixed", "auto: the GPU supports bf16"
        return "16-mixed", "auto: the GPU has no bf16"
    flags = cpu_flags() if flags is None else flags
    if native_bf16_cpu(flags):
        found = sorted(set(BF16_CPU_FLAGS) & flags)
        return "bf16-mixed", f"auto: the CPU computes bf16 natively ({', '.join(found)})"
    return "32", (f"auto: the CPU ({platform.machine() or 'unknown'}) has no native bf16 (no "
                  f"{'/'.join(BF16_CPU_FLAGS)} flag) and would emulate it far slower than fp32")


def apply_precision(trainer_cfg) -> str:
    """Replace `auto` in a trainer config (an OmegaConf node, changed in place) by the
    concrete precision, log the choice once and return it."""
    precision, why = resolve_precision(trainer_cfg.get("precision", "32"), trainer_cfg.get("accelerator", "cpu"))
    trainer_cfg.precision = precision
    log.info("trainer.precision=%s (%s); trainer.precision=32 forces fp32", precision, why)
    return precision
