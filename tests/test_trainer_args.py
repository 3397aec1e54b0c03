"""Every pytorch_lightning.Trainer argument is a `trainer.<name>=...` override (no `+`),
and the ones Lightning refuses under manual optimisation are applied by the GAN step."""
import inspect
import logging

import pytest
import pytorch_lightning as pl
import torch

from t2i.run import train
from t2i.tasks.dcgan import DCGAN

TINY = ["experiment=shapes_dcgan", "data.splits=[256,64,64]", "data.image_size=32", "model.ngf=8", "model.ndf=8",
        "model.nz=8",
        "trainer.enable_progress_bar=false", "callbacks.sample_grid.every_n_steps=1000", "logger=csv",
        "evaluate_after_fit=false"]
PASSED_BY_RUN = {"self", "logger", "callbacks"}  # built from their own config groups


def test_config_lists_every_trainer_argument(make_cfg):
    cfg = make_cfg()
    arguments = set(inspect.signature(pl.Trainer.__init__).parameters) - PASSED_BY_RUN
    missing = arguments - set(cfg.trainer)
    assert not missing, f"add {sorted(missing)} to conf/trainer/default.yaml (Lightning's defaults)"
    unknown = set(cfg.trainer) - arguments - {"_target_"}
    assert not unknown, f"conf/trainer/default.yaml has keys Trainer does not take: {sorted(unknown)}"


def _ckpt(tmp_path):
    return torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_fast_dev_run_override(make_cfg, tmp_path):
    metrics = train(make_cfg(TINY + ["trainer.fast_dev_run=true"]))
    assert "train/g_loss" in metrics  # one batch went through the GAN step
    assert not (tmp_path / "run" / "metrics.json").exists()  # and no evaluation followed


def test_limit_train_batches_and_max_steps(make_cfg, tmp_path):
    train(make_cfg(TINY + ["trainer.limit_train_batches=2", "trainer.max_steps=3"]))
    progress = _ckpt(tmp_path)["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    # 4 batches per epoch without the limit; with it, step 3 is the first batch of the next epoch
    assert progress["total"]["completed"] == 3 and progress["current"]["completed"] == 1


def test_profiler_override(make_cfg, tmp_path):
    train(make_cfg(TINY + ["trainer.max_steps=2", "trainer.profiler=simple"]))
    assert _ckpt(tmp_path)["global_step"] == 2


def test_gan_step_applies_gradient_clipping(make_cfg, tmp_path, monkeypatch, caplog):
    calls = []
    original = DCGAN.clip_gradients

    def spy(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        calls.append((gradient_clip_val, gradient_clip_algorithm))
        original(self, optimizer, gradient_clip_val, gradient_clip_algorithm)
        grads = [p.grad.abs().max() for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        assert max(grads) <= gradient_clip_val + 1e-6  # the gradients the optimizer then uses are clipped

    monkeypatch.setattr(DCGAN, "clip_gradients", spy)
    with caplog.at_level(logging.INFO, logger="t2i"):
        train(make_cfg(TINY + ["trainer.max_steps=2", "trainer.gradient_clip_val=0.001",
                               "trainer.gradient_clip_algorithm=value"]))
    assert calls == [(0.001, "value")] * 4  # D and G, 2 steps
    assert "applied by the GAN step" in caplog.text


def test_gan_step_accumulates_gradients(make_cfg, tmp_path):
    train(make_cfg(TINY + ["trainer.max_steps=2", "trainer.accumulate_grad_batches=2"]))
    ckpt = _ckpt(tmp_path)
    batches = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"]
    assert ckpt["global_step"] == 2 and batches == 4  # one step per 2 batches
    assert len(ckpt["optimizer_states"][1]["state"]) and ckpt["optimizer_states"][1]["state"][0]["step"] == 2


def test_accumulation_with_several_d_steps_is_refused(make_cfg):
    with pytest.raises(ValueError, match="d_steps=1"):
        train(make_cfg(TINY + ["trainer.max_steps=2", "trainer.accumulate_grad_batches=2", "model.d_steps=2"]))


def test_accumulation_in_automatic_optimisation(make_cfg, tmp_path):
    # tasks with one optimizer keep Lightning's own accumulation
    train(make_cfg(["experiment=shapes_autoencoder", "data.splits=[256,64,64]", "data.image_size=32",
                    "trainer.enable_progress_bar=false", "trainer.max_steps=2", "trainer.accumulate_grad_batches=2",
                    "logger=csv", "evaluate_after_fit=false"]))
    ckpt = _ckpt(tmp_path)
    assert ckpt["global_step"] == 2
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 4
