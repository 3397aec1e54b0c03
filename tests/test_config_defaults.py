"""One source of defaults: every conf/model/*.yaml states the same values as its
`_target_`'s signature (followed through **kwargs into the base classes), so a task built
in Python and one built from the config agree."""
from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from t2i.errors import ConfigError
from t2i.evaluation.settings import EvalSettings, MatchingSettings
from t2i.evaluation.settings import defaults as eval_defaults
from t2i.evaluation.settings import docs as eval_docs
from t2i.retired_options import drop_retired
from t2i.run import train
from t2i.unknown_keys import check_keys, parameters
from tests.conftest import compose_config

MODEL_DIR = Path(__file__).parents[1] / "conf" / "model"
MODELS = sorted(p.stem for p in MODEL_DIR.glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (MODEL_DIR.parent / "experiment").glob("*.yaml"))


def variant_keys(name: str) -> set[str]:
    """The keys a variant file (one whose defaults list pulls in another model file of the
    same `_target_`, e.g. df_gan_cpu on df_gan) sets on purpose; none for other files."""
    raw = OmegaConf.load(MODEL_DIR / f"{name}.yaml")
    bases = [d for d in raw.get("defaults", []) if isinstance(d, str) and (MODEL_DIR / f"{d}.yaml").exists()]
    if not bases or "_target_" in raw:
        return set()
    return {k for k in raw if k != "defaults"}


def has_interpolation(node) -> bool:
    if not OmegaConf.is_config(node):
        return False
    return any(OmegaConf.is_interpolation(node, k) or has_interpolation(node._get_node(k)) for k in node)


def stated_values(model) -> dict:
    """The composed model group's own values: no ${data.*}/${seed} interpolations (the
    config's to give) and no optimizer partials (torch's classes, not the task's)."""
    out = {}
    for key in model:
        node = model._get_node(key)
        if key.startswith("_") or OmegaConf.is_interpolation(model, key):
            continue
        if OmegaConf.is_config(node):
            if "_partial_" in node or has_interpolation(node):
                continue
            out[key] = OmegaConf.to_container(node, resolve=True)
        else:
            out[key] = node._value()
    return out


@pytest.mark.parametrize("name", MODELS)
def test_model_yaml_equals_the_signature_defaults(name, tmp_path):
    """A variant file's own settings are its point; everything else must equal Python's."""
    # ~experiment: the model file alone, without the default experiment's overrides
    cfg = compose_config("train", ["~experiment", f"model={name}", f"paths.cache_dir={tmp_path}"], tmp_path)
    target = cfg.model._target_
    defaults = parameters(get_class(target))
    drift, chosen = {}, variant_keys(name)
    for key, value in stated_values(cfg.model).items():
        assert key in defaults, f"conf/model/{name}.yaml: {key} is not a parameter of {target}"
        default = defaults[key]
        if default is inspect.Parameter.empty or key in chosen:
            continue  # required in Python: the config is the one source
        if default != value:
            drift[key] = {"yaml": value, "python": default}
    assert not drift, f"conf/model/{name}.yaml disagrees with {target}'s defaults: {drift}"


# ------------------------------------------------------------ unknown keys (t2i/unknown_keys.py)
@pytest.mark.parametrize("override, key, valid", [
    ("+model.l2_wieght=10", "model.l2_wieght", "l2_weight"),           # a typo of a model setting
    ("+data.batchsize=8", "data.batchsize", "batch_size"),
    ("+eval.num_sample=5", "eval.num_sample", "num_samples"),
    ("+eval.matching.step=5", "eval.matching.step", "steps"),
    ("+model.optimizer_g.learning_rate=1", "model.optimizer_g.learning_rate", "lr"),
    ("+callbacks.sample_grid.every=5", "callbacks.sample_grid.every", "every_n_steps"),
])
def test_an_unknown_key_is_an_error_naming_it_and_the_valid_ones(override, key, valid, make_cfg):
    cfg = make_cfg(["experiment=shapes_cond_dcgan_lstm", override])
    with pytest.raises(ConfigError, match=rf"unknown key {key}\. Valid keys of .*\b{valid}\b"):
        check_keys(cfg)


def test_train_refuses_an_unknown_key_before_any_work(make_cfg, tmp_path):
    cfg = make_cfg(["experiment=shapes_dcgan", "+model.spectral_norm=true"])
    with pytest.raises(ConfigError, match="unknown key model.spectral_norm"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_has_only_known_keys(experiment, make_cfg):
    check_keys(make_cfg([f"experiment={experiment}"]))


def test_a_checkpoint_config_with_a_removed_option_at_its_off_value_still_loads():
    stored = OmegaConf.create({"model": {"_target_": "t2i.tasks.dcgan.DCGAN", "ngf": 8, "scheduler": None,
                                         "loss": "bce", "spectral_norm": False, "full_res_conv": False,
                                         "ema_decay": 0.0}})
    assert dict(drop_retired(stored).model) == {"_target_": "t2i.tasks.dcgan.DCGAN", "ngf": 8}
    stored.model.spectral_norm = True
    with pytest.raises(ConfigError, match="model.spectral_norm=True is an option this version removed"):
        drop_retired(stored)


# ------------------------------------------------------- eval settings (t2i/evaluation/settings.py)
def test_eval_yaml_equals_the_settings_defaults():
    """conf/eval/default.yaml states every EvalSettings default, and nothing else
    (cache_dir is the config's to give: ${paths.cache_dir})."""
    raw = OmegaConf.load(MODEL_DIR.parent / "eval" / "default.yaml")
    stated = {k: v for k, v in OmegaConf.to_container(raw, resolve=False).items()
              if not OmegaConf.is_interpolation(raw, k)}
    expected = {k: v for k, v in eval_defaults().items() if k != "cache_dir"}
    assert stated == expected
    assert OmegaConf.is_interpolation(raw, "cache_dir")


def test_every_eval_setting_has_a_doc_and_a_check():
    for key, doc in eval_docs().items():
        assert doc and "\n" not in doc, key
    for f in fields(MatchingSettings) + fields(EvalSettings):
        assert "nested" in f.metadata or callable(f.metadata["check"]), f.name


@pytest.mark.parametrize("override, message", [
    ("+eval.num_sample=5", "unknown key eval.num_sample. Valid keys of eval: "),
    ("eval.num_samples=0", "eval.num_samples=0 is not allowed: an integer >= 1"),
    ("eval.monitor_samples=1", "eval.monitor_samples=1 is not allowed: an integer >= 2"),
    ("eval.best_by=val/beauty", "eval.best_by='val/beauty' is not allowed: auto or one of val/fid"),
    ("eval.best_by_tie=-1", "eval.best_by_tie=-1 is not allowed: a number >= 0"),
    ("eval.feature_extractor=clip", "eval.feature_extractor='clip' is not allowed: one of auto, inception"),
    ("eval.matching.tower=vit", "eval.matching.tower='vit' is not allowed: one of residual, plain"),
    ("eval.matching.lr=0", "eval.matching.lr=0 is not allowed: a number > 0"),
    ("eval.use_best=maybe", "eval.use_best='maybe' is not allowed: true or false"),
])
def test_train_refuses_a_bad_eval_setting_before_any_work_in_one_line(override, message, make_cfg, tmp_path):
    cfg = make_cfg(["experiment=shapes_dcgan", override])
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "cache").exists()


def test_eval_settings_are_built_from_a_partial_config():
    settings = EvalSettings.from_config({"num_samples": 5, "matching": {"steps": 3}})
    assert (settings.num_samples, settings.batch_size) == (5, 100)
    assert (settings.matching.steps, settings.matching.dim) == (3, 256)
    assert EvalSettings.of(settings) is settings
