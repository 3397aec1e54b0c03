"""Options removed from the models, and how a stored (checkpoint) config that still holds
them loads: at the value that meant "off" they are dropped; another value is an error,
since those weights need the old code."""
from __future__ import annotations

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from t2i.errors import ConfigError
from t2i.unknown_keys import parameters

# Options removed from the models (unused, and measured not to help: docs/shapes_dcgan.md),
# with the value that meant "off": a checkpoint whose stored config still holds them at
# that value loads; another value is an error, since those weights need the old code.
RETIRED = {"scheduler": None, "full_res_conv": False, "spectral_norm": False, "loss": "bce"}
RETIRED_BY_TARGET = {"t2i.tasks.dcgan.DCGAN": {"ema_decay": 0.0},
                     "t2i.tasks.dcgan_ae.DCGANAEFeatures": {"ema_decay": 0.0}}


def without_retired(target: str, settings: dict) -> dict:
    """`settings` (a stored model config) without the options this version no longer has."""
    retired = {**RETIRED, **RETIRED_BY_TARGET.get(target, {})}
    valid = parameters(get_object(target))
    out = {}
    for key, value in settings.items():
        if key in retired and (valid is None or key not in valid):
            if value != retired[key]:
                raise ConfigError(f"the stored model.{key}={value!r} is an option this version removed (only "
                                  f"{retired[key]!r} loads): use the version that trained it")
            continue
        out[key] = value
    return out


def drop_retired(cfg: DictConfig) -> DictConfig:
    """A stored (checkpoint) config without the options this version no longer has."""
    model = cfg.get("model")
    if isinstance(model, DictConfig) and "_target_" in model:
        kept = without_retired(model._target_, OmegaConf.to_container(model, resolve=False))
        for key in [k for k in model if k not in kept]:
            del model[key]
    return cfg
