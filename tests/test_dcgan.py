"""The foundation's GAN: nets, the shared step, training that measurably learns,
exact resume, the non-finite guard, mixed precision, reproducibility."""
import csv
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import MixedPrecision

from t2i.data.batches import eval_batches
from t2i.evaluation.scores import image_quality
from t2i.nets.dcgan import Discriminator, Generator
from t2i.run import build, train
from t2i.tasks.dcgan import DCGAN
from t2i.tasks.gan import NonFiniteLossError

TINY = ["experiment=shapes_dcgan", "data.splits=[256,64,64]", "data.image_size=32", "model.ngf=16", "model.ndf=16",
        "trainer.enable_progress_bar=false", "callbacks.sample_grid.every_n_steps=1000", "trainer.log_every_n_steps=1",
        "evaluate_after_fit=false"]  # these tests are about training; evaluation has its own


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("cond_dim", [0, 8])
def test_nets_shapes(size, cond_dim):
    g, d = Generator(nz=10, ngf=8, nc=3, image_size=size, cond_dim=cond_dim), Discriminator(3, 8, size, cond_dim)
    cond = torch.randn(4, cond_dim) if cond_dim else None
    x = g(torch.randn(4, 10), cond)
    assert x.shape == (4, 3, size, size) and x.abs().max() <= 1
    assert d(x, cond).shape == (4,)


def test_bad_image_size():
    with pytest.raises(ValueError, match="image sizes"):
        Generator(image_size=48)


def _state(ckpt_path: Path) -> dict:
    return torch.load(ckpt_path, map_location="cpu", weights_only=False)


def test_step_counts_generator_steps_and_checkpoint_is_complete(make_cfg, tmp_path):
    cfg = make_cfg(TINY + ["trainer.max_steps=6", "model.d_steps=2"])
    train(cfg)
    ckpt = _state(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 6  # generator steps, not optimizer.step() calls
    assert len(ckpt["optimizer_states"]) == 2
    d_state = ckpt["optimizer_states"][1]["state"]
    g_state = ckpt["optimizer_states"][0]["state"]
    assert int(next(iter(d_state.values()))["step"]) == 12  # two D steps per G step
    assert int(next(iter(g_state.values()))["step"]) == 6
    assert "t2i_config" in ckpt and ckpt["t2i_config"]["model"]["_target_"] == "t2i.tasks.dcgan.DCGAN"
    assert (tmp_path / "run" / "csv" / "metrics.csv").exists()
    assert list((tmp_path / "run" / "samples").glob("step_*.png"))


@pytest.mark.parametrize("stop_at", [4, 6])
def test_resume_matches_uninterrupted_run(make_cfg, tmp_path, stop_at):
    # 256 train images / batch 64 = 4 steps per epoch: stop at an epoch boundary (4) or
    # in the middle of an epoch (6), resume with ckpt_path=last, compare with one run.
    full = make_cfg(TINY + ["trainer.max_steps=8"], out=tmp_path / "full")
    train(full)
    half = make_cfg(TINY + [f"trainer.max_steps={stop_at}"], out=tmp_path / "split")
    train(half)
    resumed = make_cfg(TINY + ["trainer.max_steps=8", "ckpt_path=last"], out=tmp_path / "split")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(resumed)
    # the loader is marked resumable (its sampler's position is global_step): no Lightning warning
    assert not [w for w in caught if "not resumable" in str(w.message)]
    a, b = _state(tmp_path / "full/checkpoints/last.ckpt"), _state(tmp_path / "split/checkpoints/last.ckpt")
    assert a["global_step"] == b["global_step"] == 8
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-6), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(oa["state"].values(), ob["state"].values()):
            assert torch.allclose(pa["exp_avg"], pb["exp_avg"], atol=1e-6)
    # the training metrics logged before the interruption are still there (val/* rows are the
    # monitor's, which also scores the last weights of each part)
    with open(tmp_path / "split/csv/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows if r.get("train/g_loss")]
    assert steps[0] == 0 and steps[-1] == 7
    assert [int(r["step"]) for r in rows if r.get("val/fid")][-1] == 8


def test_same_seed_same_weights(make_cfg, tmp_path):
    for name in ("a", "b"):
        train(make_cfg(TINY + ["trainer.max_steps=3", "seed=5"], out=tmp_path / name))
    a, b = _state(tmp_path / "a/checkpoints/last.ckpt"), _state(tmp_path / "b/checkpoints/last.ckpt")
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    train(make_cfg(TINY + ["trainer.max_steps=3", "seed=6"], out=tmp_path / "c"))
    c = _state(tmp_path / "c/checkpoints/last.ckpt")
    assert not all(torch.equal(v, c["state_dict"][k]) for k, v in a["state_dict"].items())


class ExplodingDCGAN(DCGAN):
    """Its discriminator loss turns NaN at step 5."""

    def discriminator_loss(self, batch, fake):
        loss, logs = super().discriminator_loss(batch, fake)
        return (loss * float("nan") if self.global_step >= 5 else loss), logs


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg(TINY + ["trainer.max_steps=20", "callbacks.model_checkpoint.every_n_train_steps=2",
                           "model._target_=tests.test_dcgan.ExplodingDCGAN"])
    with pytest.raises(NonFiniteLossError, match="discriminator loss became nan at step 5"):
        train(cfg)
    ckpt = _state(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_bf16_mixed_precision_trains(make_cfg, tmp_path):
    cfg = make_cfg(TINY + ["trainer.max_steps=3", "trainer.precision=bf16-mixed"])
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/g_loss"]))


def test_fp16_grad_scaler_shared_by_both_optimizers(make_cfg, tmp_path):
    """16-mixed with a GradScaler (forced onto CPU here; on a GPU trainer.precision=16-mixed
    does the same): one scaler serves D and G, and its state is checkpointed."""

    cfg = make_cfg(TINY + ["trainer.max_steps=4"])
    datamodule, model = build(cfg)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=4, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, limit_val_batches=0,
                         plugins=[MixedPrecision("16-mixed", "cpu", scaler)])
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 4
    assert scaler._get_growth_tracker() > 0 or scaler.get_scale() != 2.0 ** 8  # the scaler took part
    trainer.save_checkpoint(tmp_path / "amp.ckpt")
    assert "MixedPrecision" in _state(tmp_path / "amp.ckpt")


def test_training_moves_generated_images_toward_the_data(make_cfg, tmp_path):
    """Domain FID (features of a classifier trained on real shapes) of generated vs real
    images drops tenfold within 100 steps."""

    overrides = ["experiment=shapes_dcgan", "data.splits=[4096,256,512]", "data.image_size=32", "model.ngf=32",
                 "model.ndf=32",
                 "model.label_smoothing=0.1",
                 "trainer.enable_progress_bar=false", "callbacks.sample_grid.every_n_steps=1000",
                 "eval.feature_extractor=domain", "eval.num_samples=512", "evaluate_after_fit=false"]
    cfg = make_cfg(overrides + ["trainer.max_steps=100"])
    datamodule, untrained = build(cfg)

    def fid(model):
        return image_quality(model.sample(eval_batches(datamodule, 512, 128)), datamodule, cfg.eval,
                             cfg.paths.cache_dir)["fid"]

    before = fid(untrained)
    train(cfg)
    ckpt = _state(tmp_path / "run" / "checkpoints" / "last.ckpt")
    untrained.load_state_dict(ckpt["state_dict"])
    after = fid(untrained)
    assert after < 0.1 * before, (before, after)  # measured: 2245 -> 90 after 100 steps


def test_channels_last_trains_in_nhwc_and_computes_the_same_steps(make_cfg, tmp_path):
    """model.channels_last converts the nets to NHWC for fit; the steps' losses match
    NCHW's (the same maths in another memory order, up to float rounding)."""

    weights, losses = {}, {}
    for layout in ("true", "false"):
        train(make_cfg(TINY + ["trainer.max_steps=3", f"model.channels_last={layout}"], out=tmp_path / layout))
        weights[layout] = _state(tmp_path / layout / "checkpoints" / "last.ckpt")["state_dict"]
        with open(tmp_path / layout / "csv" / "metrics.csv") as f:
            losses[layout] = [float(r["train/d_loss"]) for r in csv.DictReader(f) if r.get("train/d_loss")]
    conv = "discriminator.features.2.weight"  # multi-channel (a 1-channel tensor is both layouts at once)
    assert weights["true"][conv].is_contiguous(memory_format=torch.channels_last)
    assert not weights["false"][conv].is_contiguous(memory_format=torch.channels_last)
    assert len(losses["true"]) == 3 and losses["true"] == pytest.approx(losses["false"], rel=1e-3)
