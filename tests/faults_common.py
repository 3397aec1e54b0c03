"""What the test_faults_*.py files share: a tiny run's settings, a finished run to copy,
and a checkpoint that runs code when unpickled."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from t2i.run import train
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ["experiment=shapes_dcgan", "data.splits=[128,32,32]", "data.image_size=32", "data.batch_size=32", "model.ngf=8",
        "model.ndf=8",
        "trainer.enable_progress_bar=false", "callbacks.sample_grid.every_n_steps=1000", "evaluate_after_fit=false"]


def step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


def finished_run_in(base: Path) -> Path:
    """A finished 2-step run (its folder); tests copy it rather than train again."""
    cfg = compose_config("train", [f"paths.cache_dir={base / 'cache'}", *TINY, "trainer.max_steps=2"], base / "run")
    train(cfg)
    return base / "run"


class Payload:
    """Unpickled, it runs `touch marker` (the attack of issue 38)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file that looks like a Lightning checkpoint and runs code when torch.load unpickles it."""
    torch.save({"state_dict": {}, "global_step": 1, "x": Payload(marker)}, path)
    return path


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
