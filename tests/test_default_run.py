"""The default run (`python train.py`): fixed work, not a wall-clock budget, and the same
numbers for the same seed."""
import json

import pytest

from t2i.run import train


def test_the_default_is_a_step_count_with_mode_seeking(make_cfg):
    cfg = make_cfg([])
    assert cfg.task_name == "shapes_gan_cls"
    assert cfg.trainer.max_time is None and cfg.trainer.max_steps > 0  # the same model on every machine
    assert cfg.model.mode_seeking > 0  # z matters: six draws of a caption differ


@pytest.mark.slow
def test_the_same_seed_gives_the_same_metrics(make_cfg, tmp_path):
    small = ["data.splits=[256,64,64]", "model.ngf=8", "model.ndf=8", "trainer.max_steps=6",
             "eval.every_n_steps=3", "eval.monitor_samples=64", "eval.num_samples=64", "eval.kid_subset_size=32",
             "model.cpu_threads=1", "trainer.enable_progress_bar=false", "seed=3"]
    for name in ("a", "b"):
        train(make_cfg(small, out=tmp_path / name))
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("a", "b"))
    assert a == b and "alignment_accuracy" in a and "recall" in a
