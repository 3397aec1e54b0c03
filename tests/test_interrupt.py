"""A run killed with SIGTERM (cluster pre-emption, time limits) saves last.ckpt between
batches, and ckpt_path=last continues from it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["experiment=shapes_dcgan", "data.splits=[256,64,64]", "data.image_size=32", "model.ngf=16", "model.ndf=16",
        "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "evaluate_after_fit=false"]


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "train.py", *ARGS, f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path}/cache"]
    proc = subprocess.Popen(cmd + ["trainer.max_steps=100000"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    metrics = run / "csv" / "metrics.csv"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") > 3):
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    stopped_at = ckpt["global_step"]
    assert stopped_at > 0 and len(ckpt["optimizer_states"]) == 2, err[-2000:]

    done = subprocess.run(cmd + [f"trainer.max_steps={stopped_at + 3}", "ckpt_path=last"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert resumed["global_step"] == stopped_at + 3
