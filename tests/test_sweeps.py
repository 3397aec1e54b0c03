"""Sweeps: a local 2-job multirun, the Optuna search returning the metric it optimises,
and the SLURM launcher config turned into the sbatch script submitit would submit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
TINY = ["experiment=shapes_dcgan", "data.splits=[128,32,64]", "data.image_size=32", "data.batch_size=32",
        "model.ngf=8", "model.ndf=8", "trainer.max_steps=2", "trainer.enable_progress_bar=false", "logger=csv"]


def run_train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline"}
    out = subprocess.run([sys.executable, "train.py", *args, f"paths.cache_dir={tmp_path / 'cache'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_local_multirun_runs_both_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    run_train(tmp_path, "-m", *TINY, "seed=0,1", "evaluate_after_fit=false", f"hydra.sweep.dir={sweep}")
    assert (sweep / "multirun.yaml").exists()
    weights = []
    for job, seed in (("0", 0), ("1", 1)):
        ckpt = torch.load(sweep / job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        assert ckpt["t2i_config"]["seed"] == seed and ckpt["global_step"] == 2
        assert (sweep / job / ".hydra" / "overrides.yaml").exists()
        weights.append(ckpt["state_dict"]["generator.net.0.weight"])
    assert not torch.equal(*weights)  # each job ran its own seed


@pytest.mark.slow
def test_optuna_sweep_optimises_the_returned_metric(tmp_path):
    sweep = tmp_path / "optuna"
    run_train(tmp_path, "hparams_search=shapes_dcgan_optuna", *TINY, "hydra.sweeper.n_trials=2",
              "hydra.sweeper.sampler.n_startup_trials=2", "eval.num_samples=64", "eval.kid_subset_size=32",
              "eval.feature_extractor=domain", f"hydra.sweep.dir={sweep}")
    fids = [json.loads((sweep / job / "metrics.json").read_text())["fid"] for job in ("0", "1")]
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_value"] == pytest.approx(min(fids))
    # the trials differ: the sweeper set the searched parameters
    params = [yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text()) for job in ("0", "1")]
    assert params[0] != params[1] and any(p.startswith("model.optimizer_g.lr=") for p in params[0])


def test_optuna_search_space_names_real_config_keys(make_cfg):
    cfg = make_cfg(["experiment=shapes_dcgan", "hparams_search=shapes_dcgan_optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert cfg.optimized_metric == "fid" and cfg.evaluate_after_fit
    for key in sweeper.params:  # a typo would silently add a key nothing reads
        assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", key


def test_slurm_launcher_makes_a_multi_node_ddp_sbatch(make_cfg, tmp_path, monkeypatch):
    """The launcher config, resolved for 2 nodes x 4 GPUs, through the parameter mapping
    of hydra-submitit-launcher into submitit's sbatch script (nothing is submitted)."""
    submitit = pytest.importorskip("submitit")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf  # optional: hydra-submitit-launcher

    fake_bin = tmp_path / "bin"  # submitit checks that srun exists
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")

    cfg = make_cfg(["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2", "trainer.devices=4",
                    "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90"])
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("submitit_launcher.SlurmLauncher")
    params.pop("submitit_folder")
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "submitit",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python train.py", "uid")
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=90"):
        assert f"#SBATCH {line}" in script
