"""The DCGAN's options: the lazy R1 penalty, and bad values named."""
import functools

import pytest
import pytorch_lightning as pl
import torch

from t2i.tasks.dcgan import DCGAN
from t2i.tasks.gan import training_progress

ADAM = functools.partial(torch.optim.Adam, lr=2e-4)


def _model(**kw) -> DCGAN:
    torch.manual_seed(0)
    return DCGAN(channels=1, image_size=32, ngf=8, ndf=8, nz=8, optimizer_g=ADAM, optimizer_d=ADAM, **kw)


def test_r1_penalty_is_added_on_penalised_steps_only():
    real = {"image": torch.rand(6, 1, 32, 32) * 2 - 1}
    fake = torch.rand(6, 1, 32, 32) * 2 - 1
    plain, _ = _model().discriminator_loss(real, fake)
    model = _model(r1_gamma=10.0, r1_every=4)
    penalised, logs = model.discriminator_loss(real, fake)  # D step 0: penalised
    assert logs["train/r1"] > 0
    assert torch.isclose(penalised, plain + 0.5 * 10.0 * 4 * logs["train/r1"])
    penalised.backward()  # the penalty's graph reaches D's weights
    assert all(p.grad is not None for p in model.discriminator.parameters())
    model.d_calls = 1  # the shared step's clock of D steps: not a multiple of r1_every
    assert "train/r1" not in model.discriminator_loss(real, fake)[1]
    model.d_calls = 8
    assert "train/r1" in model.discriminator_loss(real, fake)[1]


@pytest.mark.parametrize("kw,match", [({"r1_gamma": -1.0}, "r1_gamma"), ({"r1_every": 0}, "r1_every")])
def test_bad_options_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        _model(**kw)


class _LearningRates(pl.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, module, *args):
        self.seen.append([g["lr"] for opt in trainer.optimizers for g in opt.param_groups])


def _fit(model, steps: int, tmp_path, **trainer_kw) -> list:
    data = torch.utils.data.DataLoader([{"image": torch.rand(1, 32, 32) * 2 - 1} for _ in range(16)], batch_size=4)
    rates = _LearningRates()
    pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, callbacks=[rates], default_root_dir=tmp_path, **trainer_kw).fit(model, data)
    return rates.seen


def test_lr_decay_falls_linearly_over_the_last_fraction_of_max_steps(tmp_path):
    seen = _fit(_model(lr_decay=0.5), 8, tmp_path)
    g_rates = [round(r[0] / 2e-4, 6) for r in seen]
    assert g_rates == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]  # set before step s: min(1, (1 - s/8) / 0.5)
    assert all(r[0] == r[1] for r in seen)  # D's rate follows the same schedule
    assert [r[0] for r in _fit(_model(), 4, tmp_path)] == [2e-4] * 4  # 0: constant


def test_lr_decay_resumes_on_the_configured_rates_not_the_decayed_ones(tmp_path):
    whole = _fit(_model(lr_decay=0.5), 8, tmp_path / "whole")
    first = _model(lr_decay=0.5)
    trainer = pl.Trainer(max_steps=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    data = torch.utils.data.DataLoader([{"image": torch.rand(1, 32, 32) * 2 - 1} for _ in range(16)], batch_size=4)
    trainer.fit(first, data)
    trainer.save_checkpoint(tmp_path / "six.ckpt")  # its optimizer states hold the rate decayed at step 5
    rates = _LearningRates()
    pl.Trainer(max_steps=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, callbacks=[rates], default_root_dir=tmp_path).fit(
        _model(lr_decay=0.5), data, ckpt_path=tmp_path / "six.ckpt")
    assert [r[0] for r in rates.seen] == pytest.approx([r[0] for r in whole[6:]])


def test_training_progress_follows_max_time_when_it_comes_first():
    class Timer:  # trainer.max_time's Timer, three-quarters through the training time
        def time_elapsed(self, stage):
            return 30.0

        def time_remaining(self, stage):
            return 10.0
    assert training_progress(100, 1000, [Timer()]) == 0.75
    assert training_progress(900, 1000, [Timer()]) == 0.9  # the steps are further along
    assert training_progress(100, -1, []) == 0.0  # no limit known: no decay
    assert _model(lr_decay=0.5).lr_factor(0.75) == 0.5


def test_lr_decay_outside_zero_one_is_named():
    with pytest.raises(ValueError, match="lr_decay"):
        _model(lr_decay=1.5)
