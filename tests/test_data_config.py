"""conf/data/*.yaml and the data modules they build say the same thing: every value a
data config sets (interpolations like ${seed} aside) is the Python default of its
`_target_`, so a module built in Python behaves as `data=<name>` does."""
from __future__ import annotations

import inspect
from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from t2i.data.caption_datamodule import CaptionDataModule
from t2i.text.word2vec import WORD2VEC_DEFAULTS
from tests.conftest import ROOT, data_config

DATA_CONFIGS = sorted(p.stem for p in (ROOT / "conf" / "data").glob("*.yaml"))
MISSING = object()


def python_defaults(cls) -> dict:
    """Keyword defaults of cls.__init__ and of the parents its **kw reaches."""
    defaults = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass):
            for name, p in inspect.signature(klass.__init__).parameters.items():
                if p.default is not inspect.Parameter.empty:
                    defaults[name] = p.default
    return defaults


def interpolated(value) -> bool:
    return isinstance(value, str) and "${" in value


@pytest.mark.parametrize("name", DATA_CONFIGS)
def test_yaml_values_are_the_python_defaults(name):
    cfg = OmegaConf.to_container(data_config(name), resolve=False)
    cls = hydra.utils.get_class(cfg.pop("_target_"))
    defaults = python_defaults(cls)
    wrong = {}
    for key, value in cfg.items():
        if interpolated(value) or value == "???":
            continue
        if key == "channels":  # a fact of the dataset, checked against the class, not a choice
            expected = cls.channels
        elif key == "word2vec":  # None in Python: the defaults of t2i/text/word2vec.py
            expected = WORD2VEC_DEFAULTS
        else:
            expected = defaults.get(key, MISSING)
        if isinstance(expected, tuple):
            expected = list(expected)
        if expected is MISSING or expected != value:
            wrong[key] = (value, "no such argument" if expected is MISSING else expected)
    assert not wrong, f"conf/data/{name}.yaml vs {cls.__name__} (yaml, python): {wrong}"


def test_the_text_settings_yaml_is_the_python_defaults():
    text = OmegaConf.to_container(OmegaConf.load(Path(ROOT) / "conf" / "data" / "text" / "word2vec.yaml"))
    assert text.pop("word2vec") == WORD2VEC_DEFAULTS
    assert text == {k: v for k, v in python_defaults(CaptionDataModule).items() if k in text}
    assert set(text) == {"max_words", "embedding_dim", "standardize"}
