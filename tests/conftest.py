"""Shared fixtures: compose the real Hydra config the way train.py does."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: one thread each (and in the CLI tests' child
    # processes), since two workers with two threads each on two cores run slower, not faster
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose `conf/<name>.yaml` with overrides, with hydra's runtime output dir set,
    so `${paths.output_dir}` resolves as in a real run."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.hydra.job.override_dirname = "test"
        cfg.paths.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def data_config(name: str) -> DictConfig:
    """conf/data/<name>.yaml composed (its defaults list included, e.g. the text settings of
    conf/data/text/word2vec.yaml), interpolations such as ${seed} left for the caller to set."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(overrides=[f"+data={name}"])  # the group alone: nothing of train.yaml merged in
    return cfg.data


@pytest.fixture
def make_cfg(tmp_path):
    def _make(overrides: list[str] | None = None, name: str = "train", out: Path | None = None) -> DictConfig:
        out = out or tmp_path / "run"
        base = [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.data_dir={tmp_path / 'data'}"]
        return compose_config(name, base + (overrides or []), out)
    return _make


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished 2-step shapes_dcgan run (tests/faults_common.py); tests copy it, never change it."""
    from tests.faults_common import finished_run_in  # here: faults_common imports this module
    return finished_run_in(tmp_path_factory.mktemp("finished"))
