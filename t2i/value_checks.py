"""The main settings' types and ranges, checked before any work starts (train.py,
evaluate.py, generate.py): one line naming the key, the value and what is allowed. The
eval.* settings are checked by their owner, t2i.evaluation.settings.EvalSettings."""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from t2i.errors import ConfigError
from t2i.evaluation.settings import MAX_SEED, EvalSettings

MAX_IMAGES_PER_CAPTION = 64  # generate.py / demo.py / Generator: n images per caption, drawn in one batch
# key: (lowest allowed value, what is allowed). Integers; a key a config lacks is skipped.
# eval.* are checked by their owner, t2i.evaluation.settings.EvalSettings.
INTEGERS = {
    "trainer.max_steps": (-1, "an integer >= 0 (generator steps), or -1 for no step limit"),
    "trainer.max_epochs": (-1, "an integer >= 0, -1 or null for no epoch limit"),
    "trainer.log_every_n_steps": (1, "an integer >= 1"),
    "data.batch_size": (1, "an integer >= 1"),
    "data.num_workers": (0, "an integer >= 0"),
    "data.image_size": (4, "an integer >= 4 (pixels; each model says which sizes it builds)"),
    "n": (1, f"an integer from 1 to {MAX_IMAGES_PER_CAPTION} (images per caption)"),
    "seed": (0, f"an integer from 0 to {MAX_SEED}"),
}
# the most a key may be, where more is never meant (n=100000 would fill the memory first)
HIGHEST = {"n": MAX_IMAGES_PER_CAPTION, "seed": MAX_SEED}
NULLABLE = {"trainer.max_epochs", "data.num_workers"}  # evaluate.py: data.* null keeps the stored value


def check_config(cfg: DictConfig) -> EvalSettings | None:
    """Raise ConfigError for the first setting out of its range (before data or models load).
    Returns the evaluation settings (None for a config without `eval`, e.g. generate.py's)."""
    for key in INTEGERS:
        missing = object()
        value = OmegaConf.select(cfg, key, default=missing)
        if value is missing or (value is None and key in NULLABLE):
            continue
        check_value(key, value)
    if isinstance(cfg.get("eval"), DictConfig):  # every eval.* key: its one owner checks it
        return EvalSettings.from_config(cfg.eval)
    return None


def check_value(key: str, value) -> None:
    """ConfigError unless `value` is an integer in INTEGERS[key]'s range (HIGHEST's too)."""
    lowest, allowed = INTEGERS[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest or value > HIGHEST.get(key, value):
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")
