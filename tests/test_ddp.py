"""DDP on the CPU (gloo, 2 processes): both ranks step on distinct shards of the data,
their weights stay in sync, the checkpoint is complete and loads, and evaluation after
training runs once, on rank 0, over the whole requested sample."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ITEMS, BATCH, STEPS = 64, 16, 4  # 2 ranks x 32 items: 2 batches per rank per epoch, 2 epochs


class RankProbe(pl.Callback):
    """Added to the test's training run (each DDP process builds its own): writes what
    its rank trained on, per epoch, and a checksum of its weights."""

    def __init__(self, dirpath: str):
        self.dirpath, self.seen = Path(dirpath), {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # the continuous attributes (shape, size, x, y, fill) identify each generated shape
        ids = [",".join(f"{v:.6f}" for v in row) for row in batch["attributes"].tolist()]
        self.seen.setdefault(str(trainer.current_epoch), []).extend(ids)

    def on_train_end(self, trainer, pl_module):
        sums = {name: sum(float(p.detach().double().sum()) for p in getattr(pl_module, name).parameters())
                for name in ("generator", "discriminator")}
        report = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                  "global_step": trainer.global_step, "seen": self.seen, "weights": sums,
                  "sampler": type(trainer.train_dataloader.sampler).__name__,
                  "parameters": [name for name, _ in pl_module.named_parameters()]}
        self.dirpath.mkdir(parents=True, exist_ok=True)
        (self.dirpath / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


def run(script: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    run_dir, probe = tmp_path / "run", tmp_path / "probe"
    run("train.py", "experiment=shapes_dcgan", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        f"trainer.max_steps={STEPS}", f"data.splits=[{TRAIN_ITEMS},32,64]", f"data.batch_size={BATCH}",
        "data.image_size=32", "model.ngf=8", "model.ndf=8", "logger=csv", "trainer.enable_progress_bar=false",
        "evaluate_after_fit=true", "eval.num_samples=48", "eval.kid_subset_size=16", "eval.batch_size=20",
        "eval.feature_extractor=domain", f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}",
        "eval.every_n_steps=2", "eval.monitor_samples=32",
        "+callbacks.rank_probe._target_=tests.test_ddp.RankProbe", f"+callbacks.rank_probe.dirpath={probe}")

    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, report in enumerate(ranks):
        assert report["rank"] == r and report["world_size"] == 2
        assert report["global_step"] == STEPS  # generator steps, on each rank
        assert report["sampler"] == "DistributedSamplerWrapper"  # around the EpochSeededSampler
        assert sorted(report["seen"]) == ["0", "1"]
        assert all(len(items) == TRAIN_ITEMS // 2 for items in report["seen"].values())

    # each epoch, the two ranks see disjoint halves that together cover the split once
    for epoch in ("0", "1"):
        a, b = set(ranks[0]["seen"][epoch]), set(ranks[1]["seen"][epoch])
        assert not a & b and len(a | b) == TRAIN_ITEMS
    # and the epoch seeds the shuffle: a rank's shard changes between epochs
    assert ranks[0]["seen"]["0"] != ranks[0]["seen"]["1"]

    # gradients were averaged: both ranks hold the same weights after different data
    for net in ("generator", "discriminator"):
        assert ranks[0]["weights"][net] == pytest.approx(ranks[1]["weights"][net], rel=1e-6, abs=1e-6)

    # the checkpoint is complete: both optimisers, the loops, the data module, the config
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == STEPS and len(ckpt["optimizer_states"]) == 2
    assert all(state["state"] for state in ckpt["optimizer_states"])  # Adam moments of both nets
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == STEPS
    assert ckpt["t2i_config"]["trainer"]["strategy"].startswith("ddp")
    generator = [k for k in ranks[0]["parameters"] if k.startswith("generator.")]
    saved = sum(ckpt["state_dict"][k].double().sum().item() for k in generator)
    assert saved == pytest.approx(ranks[0]["weights"]["generator"], rel=1e-6, abs=1e-6)

    # evaluation after fit ran once (rank 0), over every requested sample
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_samples"] == 48 and metrics["fid"] > 0

    # the monitor scored on rank 0, every image once, and both ranks agreed on best.ckpt
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/fid")]
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert metrics["checkpoint"] == "best" and (run_dir / "checkpoints" / "best.ckpt").exists()

    # and the checkpoint loads in evaluate.py, in one process
    eval_dir = tmp_path / "eval"
    run("evaluate.py", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={eval_dir}",
        "eval.num_samples=48", "eval.kid_subset_size=16", "eval.feature_extractor=domain",
        f"eval.cache_dir={tmp_path / 'cache'}")
    assert json.loads((eval_dir / "metrics.json").read_text())["num_samples"] == 48
