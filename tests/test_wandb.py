"""W&B runs offline without an account, records losses, samples and config, and one
crashed multirun job does not break the others' runs."""
import subprocess
import sys
from pathlib import Path

import pytest

from t2i.loggers import make_wandb_logger
from t2i.run import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["experiment=shapes_dcgan", "data.splits=[128,64,64]", "data.image_size=32", "model.ngf=16", "model.ndf=16",
        "trainer.enable_progress_bar=false", "trainer.max_steps=3", "trainer.log_every_n_steps=1",
        "evaluate_after_fit=false"]


def run_file(run_dir: Path) -> bytes:
    files = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0].read_bytes()


def test_wandb_offline_records_losses_samples_config(make_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    train(make_cfg(TINY + ["logger=wandb", "callbacks.sample_grid.every_n_steps=1"]))
    blob = run_file(tmp_path / "run")
    for key in (b"train/d_loss", b"train/g_loss", b"train/d_real", b"train/d_fake", b"optimizer_g", b"samples"):
        assert key in blob, key
    assert list((tmp_path / "run").glob("wandb/offline-run-*/files/media/images/samples_*.png"))


def test_wandb_mode_is_validated():
    with pytest.raises(ValueError, match="mode"):
        make_wandb_logger(mode="sometimes")


@pytest.mark.slow
def test_crashed_multirun_job_does_not_break_the_next(tmp_path):
    # job 0's loss turns NaN at step 5 (it crashes after logging); job 1 must still train
    # and log into its own, separate W&B run
    out = subprocess.run(
        [sys.executable, "train.py", "-m", "logger=wandb",
         "model._target_=tests.test_dcgan.ExplodingDCGAN,t2i.tasks.dcgan.DCGAN", *TINY, "trainer.max_steps=8",
         f"hydra.sweep.dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                    "WANDB_MODE": "offline"})
    assert "Error executing job" in out.stderr  # the failure is reported, the sweep goes on
    assert (tmp_path / "1" / "checkpoints" / "last.ckpt").exists()
    first, second = run_file(tmp_path / "0"), run_file(tmp_path / "1")
    assert b"train/g_loss" in first and b"train/g_loss" in second
    assert not (tmp_path / "0" / "checkpoints" / "step_000008.ckpt").exists()
    assert first.count(b"train/g_loss") < second.count(b"train/g_loss")
