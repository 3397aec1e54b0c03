"""The DCGAN's options: the lazy R1 penalty, and bad values named."""
import functools

import pytest
import torch

from t2i.tasks.dcgan import DCGAN

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
