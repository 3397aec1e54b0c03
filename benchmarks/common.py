"""What every benchmark shares: the project's composed config, and a LightningModule's
training step timed through a plain Trainer on one repeated batch (the step, not the
data pipeline)."""
from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
NO_EXPERIMENT = "~experiment"  # the data and model configs as their own files define them


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------ configs
def compose(overrides: list[str]):
    """The project's own train config (the models and data modules as train.py builds them)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def path_overrides(args) -> list[str]:
    return [f"paths.data_dir={args.data_dir}", f"paths.cache_dir={args.cache_dir}", "logger=[]", f"seed={args.seed}"]


# ------------------------------------------------------------------ timing
class RepeatedBatch(Dataset):
    """The same batch, n times: the step is timed, not the data pipeline."""

    def __init__(self, batch: dict, n: int):
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.batch


def step_loader(batch: dict, n: int) -> DataLoader:
    return DataLoader(RepeatedBatch(batch, n), batch_size=None, shuffle=False, num_workers=0)


def img_per_s(stamps: list[float], warmup: int, batch_size: int) -> float:
    """Images per second between the end of the last warm-up step and the end of the last step."""
    timed = len(stamps) - warmup
    return batch_size * timed / (stamps[-1] - stamps[warmup - 1])


def lightning_img_per_s(task, batch: dict, args, precision: str) -> float:
    """Run a LightningModule's training_step through a plain Trainer (no logger, no
    checkpoints, no progress bar) and time the steps after the warm-up."""
    stamps: list[float] = []

    class StepClock(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            sync(args.device)
            stamps.append(time.perf_counter())

    n = args.warmup + args.steps
    trainer = pl.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, precision=precision,
        max_steps=n, max_epochs=-1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[StepClock()],
        benchmark=None, use_distributed_sampler=False, log_every_n_steps=50)
    trainer.fit(task, train_dataloaders=step_loader(batch, n))
    if len(stamps) != n:
        raise RuntimeError(f"the Lightning run stopped after {len(stamps)} of {n} steps")
    return img_per_s(stamps, args.warmup, batch["image"].shape[0])
