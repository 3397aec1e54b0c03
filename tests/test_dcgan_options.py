"""The default run's DCGAN options: generator EMA, R1 penalty (lazy), hinge loss, spectral norm."""
import functools

import pytest
import torch

from t2i.nets.dcgan import Discriminator
from t2i.tasks.dcgan import DCGAN

ADAM = functools.partial(torch.optim.Adam, lr=2e-4)


def _model(**kw) -> DCGAN:
    torch.manual_seed(0)
    return DCGAN(channels=1, image_size=32, ngf=8, ndf=8, nz=8, optimizer_g=ADAM, optimizer_d=ADAM, **kw)


def test_ema_draws_in_eval_mode_and_follows_the_live_weights():
    model = _model(ema_decay=0.9)
    z = torch.rand(4, 8) * 2 - 1
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(0.5)  # a "training step" the average has not seen yet
    model.eval()
    before = model.generate({}, z)
    model.train()
    assert not torch.allclose(model.generate({}, z), before)  # training draws with the live generator
    model.on_train_batch_end(None, None, 0)  # step 0: warm-up decay 1/10, the average moves 90% of the way
    model.eval()
    assert not torch.allclose(model.generate({}, z), before)
    live = model.generator.eval()(z)
    ema_gap = (model.generate({}, z) - live).abs().mean()
    assert ema_gap < (before - live).abs().mean()  # closer to the live weights than before the update


def test_r1_penalty_is_added_on_penalised_steps_only():
    real = {"image": torch.rand(6, 1, 32, 32) * 2 - 1}
    fake = torch.rand(6, 1, 32, 32) * 2 - 1
    plain, _ = _model().discriminator_loss(real, fake)
    model = _model(r1_gamma=10.0, r1_every=4)
    penalised, logs = model.discriminator_loss(real, fake)  # global_step 0: penalised
    assert logs["train/r1"] > 0
    assert torch.isclose(penalised, plain + 0.5 * 10.0 * 4 * logs["train/r1"])
    penalised.backward()  # the penalty's graph reaches D's weights
    assert all(p.grad is not None for p in model.discriminator.parameters())
    model._trainer = type("T", (), {"global_step": 1})()  # not a multiple of r1_every
    assert "train/r1" not in model.discriminator_loss(real, fake)[1]


def test_hinge_loss():
    model = _model(loss="hinge")
    real = {"image": torch.rand(4, 1, 32, 32) * 2 - 1}
    fake = torch.rand(4, 1, 32, 32) * 2 - 1
    d_loss, _ = model.discriminator_loss(real, fake)
    r, f = model.discriminator(real["image"]), model.discriminator(fake)
    assert torch.isclose(d_loss, torch.relu(1 - r).mean() + torch.relu(1 + f).mean())
    assert torch.isclose(model.generator_loss(real, fake)[0], -f.mean())


def test_spectral_norm_discriminator_has_no_batch_norm():
    d = Discriminator(1, 8, 32, spectral_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert sum(hasattr(m, "weight_orig") for m in d.modules()) == 4


@pytest.mark.parametrize("kw,match", [({"loss": "wasserstein"}, "model.loss"), ({"r1_gamma": -1.0}, "r1_gamma"),
                                      ({"r1_every": 0}, "r1_every"), ({"ema_decay": 1.0}, "ema_decay")])
def test_bad_options_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        _model(**kw)
