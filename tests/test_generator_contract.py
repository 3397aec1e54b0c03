"""The image-generator contract (t2i/generator.py): which models are image generators,
what their pictures may assume, and the one way noise is drawn."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from hydra.utils import instantiate

from t2i.errors import ConfigError
from t2i.evaluation.settings import EvalSettings
from t2i.image_generator import ImageGenerator, draw_noise, is_text_to_image
from t2i.run import check_monitored
from t2i.tasks.inpainting import ContextEncoderInpainting

GENERATORS = {"dcgan": (True, False), "gan_cls": (True, True), "df_gan": (True, True),
              "cond_dcgan_lstm": (True, True)}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_say_what_they_use(name, make_cfg):
    uses_noise, uses_text = GENERATORS[name]
    model = instantiate(make_cfg(["~experiment", f"model={name}", "data=shapes_captions"]).model)
    assert isinstance(model, ImageGenerator)
    assert (model.uses_noise, model.uses_text, is_text_to_image(model)) == (uses_noise, uses_text, uses_text)


def test_the_context_encoder_is_no_image_generator_and_the_monitor_refuses_it():
    """It fills a 32x32 hole: scoring its patches against whole images as FID did was wrong."""
    adam = partial(torch.optim.Adam, lr=1e-4)
    model = ContextEncoderInpainting(optimizer_g=adam, optimizer_d=adam)
    assert not isinstance(model, ImageGenerator) and not is_text_to_image(model)
    with pytest.raises(ConfigError, match="eval.every_n_steps=0"):
        check_monitored(model, EvalSettings(every_n_steps=5))


def test_draw_noise_is_the_seeds_uniform_or_a_normal_and_names_a_bad_kind():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(draw_noise(4, 5, "uniform", g()), torch.rand(4, 5, generator=g()) * 2 - 1)
    assert torch.equal(draw_noise(4, 5, "normal", g()), torch.randn(4, 5, generator=g()))
    with pytest.raises(ValueError, match="model.noise"):
        draw_noise(1, 1, "gaussian", g())
