"""The one owner of the evaluation settings (`eval.*`): every key's default, its check
and a one-line doc. `EvalSettings.from_config(cfg.eval)` is built once, before any work
(train.py, evaluate.py), and passed down; an unknown key or a value out of range is a
one-line ConfigError naming the key, the value and what is allowed.
conf/eval/default.yaml states the same defaults (tests/test_config_defaults.py checks)."""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from t2i.errors import ConfigError
from t2i.evaluation.metric_table import MONITORED, TIE_BREAKS

MAX_SEED = 2**32 - 1
FEATURE_EXTRACTORS = ("auto", "inception", "domain", "matching")
REFERENCE_SPLITS = ("train", "test")
TOWERS = ("residual", "plain")
AUGMENTS = ("crop_flip", "shift")


# ------------------------------------------------------------------ checks
# Each returns the value as the settings hold it, or None when it is not allowed.
def integer(lowest: int, highest: int | None = None, nullable: bool = False) -> Callable[[Any], Any]:
    def check(value):
        if value is None and nullable:
            return None
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= lowest \
            and (highest is None or value <= highest)
        return value if ok else _BAD
    return check


def number(lowest: float, above: bool = False) -> Callable[[Any], Any]:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _BAD
        return float(value) if (value > lowest if above else value >= lowest) else _BAD
    return check


def one_of(*choices: str) -> Callable[[Any], Any]:
    return lambda value: value if value in choices else _BAD


def flag(value):
    return value if isinstance(value, bool) else _BAD


def text_or_null(value):
    return value if value is None or isinstance(value, str) else _BAD


def monitored(value):
    """auto, or a metric the monitor logs (with or without its val/ prefix)."""
    if value in (None, "", "auto"):
        return "auto"
    return value if isinstance(value, str) and value.removeprefix("val/") in MONITORED else _BAD


def tie_break(value):
    return value if isinstance(value, str) and value.removeprefix("val/") in TIE_BREAKS else _BAD


_BAD = object()


def setting(default, check: Callable[[Any], Any], allowed: str, doc: str):
    """A dataclass field with its check, what is allowed (for the error) and its doc."""
    return field(default=default, metadata={"check": check, "allowed": allowed, "doc": doc})


def nested(cls, doc: str):
    return field(default_factory=cls, metadata={"nested": cls, "doc": doc})


# ---------------------------------------------------------------- settings
class Settings:
    """What both settings classes share: built from a (partial) config node, checked."""

    @classmethod
    def from_config(cls, node=None, where: str = "eval"):
        """Settings from a (partial) config node or dict; missing keys keep their defaults.
        ConfigError for an unknown key or a value that is not allowed."""
        return _build(cls, node, where)

    @classmethod
    def of(cls, given):
        """`given` as settings: already settings, or a (partial) config to check and build."""
        return given if isinstance(given, cls) else cls.from_config(given)


@dataclass(frozen=True)
class MatchingSettings(Settings):
    """The text-image matching evaluator (trained once per dataset and settings, cached)."""
    steps: int = setting(2000, integer(1), "an integer >= 1", "training steps")
    image_size: int = setting(32, integer(4), "an integer >= 4",
                              "the evaluator's input side: images are resized (area) to it")
    batch_size: int = setting(128, integer(2), "an integer >= 2", "training batch size")
    dim: int = setting(256, integer(1), "an integer >= 1", "the joint embedding's size")
    width: int = setting(32, integer(1), "an integer >= 1", "the image tower's first width")
    word_dim: int = setting(128, integer(1), "an integer >= 1", "the text tower's word embedding size")
    lr: float = setting(0.002, number(0, above=True), "a number > 0", "AdamW's peak learning rate (one cycle)")
    seed: int = setting(0, integer(0, MAX_SEED), f"an integer from 0 to {MAX_SEED}", "its training seed")
    tower: str = setting("plain", one_of(*TOWERS), "one of " + ", ".join(TOWERS),
                         "plain (conv stages) | residual (a strided stem + one ResNet basic block)")
    augment: str = setting("shift", one_of(*AUGMENTS), "one of " + ", ".join(AUGMENTS),
                           "shift (small random translations) | crop_flip")
    same_class: int = setting(0, integer(0), "an integer >= 0",
                              "k > 0: batches of batch_size / k classes, k images each (same-class negatives)")
    colour: bool = setting(False, flag, "true or false",
                           "the image tower also pools a learned colour histogram (whole image + centre)")
    cpu_threads: int | None = setting(1, integer(1, nullable=True), "an integer >= 1, or null (torch's default)",
                                      "torch threads while it trains on a CPU (a GPU is used when present)")

    RUNTIME = ("cpu_threads",)  # how it is trained, not what: not part of the cache key

    def identity(self) -> dict:
        """What the evaluator depends on (its cache key): every setting but the runtime ones."""
        return {k: v for k, v in asdict(self).items() if k not in self.RUNTIME}


@dataclass(frozen=True)
class EvalSettings(Settings):
    """evaluate.py, the evaluation after fit and the in-training monitor."""
    num_samples: int = setting(1000, integer(1), "an integer >= 1 (generated images scored)",
                               "generated images scored by evaluate.py (one per test item, up to the split's size)")
    batch_size: int = setting(100, integer(1), "an integer >= 1", "images per batch while scoring")
    feature_extractor: str = setting("auto", one_of(*FEATURE_EXTRACTORS), "one of " + ", ".join(FEATURE_EXTRACTORS),
                                     "the feature space of FID/KID/precision/recall")
    inception_weights: str | None = setting(None, text_or_null, "a path, or null",
                                            "a local pt_inception-2015-12-05-6726825d.pth")
    reference_split: str = setting("test", one_of(*REFERENCE_SPLITS), "one of " + ", ".join(REFERENCE_SPLITS),
                                   "the real images FID/KID/precision/recall compare against")
    kid_subset_size: int = setting(100, integer(2), "an integer >= 2", "KID's subset size")
    seed: int = setting(0, integer(0, MAX_SEED), f"an integer from 0 to {MAX_SEED}",
                        "draws of the evaluation (KID subsets, distractors, pictures' noise)")
    r_precision_draws: int = setting(10, integer(1), "an integer >= 1", "R-precision's draws of 99 distractors")
    matching: MatchingSettings = nested(MatchingSettings, "the matching evaluator")
    every_n_steps: int = setting(0, integer(0), "an integer >= 0 (0 turns the monitor off)",
                                 "the in-training monitor scores every N generator steps")
    monitor_samples: int = setting(1000, integer(2), "an integer >= 2", "images the monitor scores each time")
    best_by: str = setting("auto", monitored, "auto or one of " + ", ".join(f"val/{k}" for k in MONITORED),
                           "the metric behind best.ckpt")
    best_by_tie: float = setting(0.01, number(0), "a number >= 0 (0: only equal scores tie)",
                                 "caption-faithfulness scores this close to the best seen tie")
    best_by_tie_break: str = setting("val/fid", tie_break, "one of " + ", ".join(f"val/{k}" for k in TIE_BREAKS),
                                     "what picks among tied scores")
    use_best: bool = setting(True, flag, "true or false", "the evaluation after fit uses best.ckpt when kept")
    num_captions: int = setting(8, integer(1), "an integer >= 1", "captions.png rows")
    images_per_caption: int = setting(6, integer(1), "an integer >= 1", "captions.png images per row")
    inpainting_rows: int = setting(8, integer(1), "an integer >= 1", "inpainting.png rows")
    cache_dir: str | None = setting(None, text_or_null, "a folder path",
                                    "feature networks, matching evaluators and reference features")

    @property
    def cache(self) -> str:
        """The cache folder (`.cache` when none is set)."""
        return self.cache_dir or ".cache"

    @property
    def best_by_key(self) -> str | None:
        """eval.best_by without its val/ prefix; None for auto."""
        return None if self.best_by == "auto" else self.best_by.removeprefix("val/")

    @property
    def tie_break_key(self) -> str:
        return self.best_by_tie_break.removeprefix("val/")

    def with_(self, **changes) -> EvalSettings:
        return replace(self, **changes)


def _plain(node) -> dict:
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)
    return dict(node)


def _build(cls, node, where: str):
    given = _plain(node)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(f'{where}.{k}' for k in unknown)}"
                          f". Valid keys of {where}: {', '.join(sorted(known))}")
    values = {}
    for name, value in given.items():
        meta = known[name].metadata
        if "nested" in meta:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{where}.{name}={value!r} is not allowed: a group of settings "
                                  f"({', '.join(f.name for f in fields(meta['nested']))})")
            values[name] = _build(meta["nested"], value, f"{where}.{name}")
            continue
        checked = meta["check"](value)
        if checked is _BAD:
            raise ConfigError(f"{where}.{name}={value!r} is not allowed: {meta['allowed']}")
        values[name] = checked
    return cls(**values)


def defaults(cls=EvalSettings) -> dict:
    """Every default as plain data (conf/eval/default.yaml must state the same)."""
    out = {}
    for f in fields(cls):
        out[f.name] = defaults(f.metadata["nested"]) if "nested" in f.metadata else (
            f.default if f.default is not MISSING else None)
    return out


def docs(cls=EvalSettings, where: str = "eval") -> dict[str, str]:
    """Every key's one-line doc, by its full name."""
    out = {}
    for f in fields(cls):
        out[f"{where}.{f.name}"] = f.metadata["doc"]
        if "nested" in f.metadata:
            out.update(docs(f.metadata["nested"], f"{where}.{f.name}"))
    return out
