"""Unknown config keys are an error before any work starts: a misspelt `model.l2_wieght=10`
or a setting an older version had would otherwise be ignored or fail deep inside a run.

Valid keys of a node with a `_target_` (model, data, callbacks.*, logger.*, trainer, and
the optimizer partials inside model) are its target's constructor parameters, followed
through `**kwargs` into the base classes; `eval.*` are the fields of
t2i.evaluation.settings.EvalSettings, which checks them."""
from __future__ import annotations

import inspect

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from t2i.errors import ConfigError
from t2i.evaluation.settings import EvalSettings

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
TARGET_GROUPS = ("model", "data", "trainer", "callbacks", "logger")  # callbacks/logger: one node per entry
CLOSED_BASES = {"object", "pytorch_lightning.core.module.LightningModule",
                "pytorch_lightning.core.datamodule.LightningDataModule",
                "lightning.pytorch.core.module.LightningModule",
                "lightning.pytorch.core.datamodule.LightningDataModule", "torch.nn.modules.module.Module"}


def parameters(target) -> dict | None:
    """The keyword parameters `target(...)` accepts, with their defaults (inspect's `empty`
    for a required one), or None when it takes arbitrary **kwargs (then any key may be
    valid). A class's `**kwargs` are followed into the next `__init__` of its MRO, as
    `super().__init__(**kwargs)` passes them on, up to a base that takes no settings
    (LightningModule, ...); the subclass's default wins."""
    if not inspect.isclass(target):
        return _collect([target], closed=False)
    inits = []
    for cls in target.__mro__:
        if f"{cls.__module__}.{cls.__qualname__}" in CLOSED_BASES:
            return _collect(inits, closed=True)
        if "__init__" in cls.__dict__:
            inits.append(cls.__init__)
    return _collect(inits, closed=False)


def _collect(functions, closed: bool) -> dict | None:
    found: dict = {}
    for function in functions:
        params = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
        for p in params:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                found.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return found
    return found if closed else None


def _unknown(where: str, keys, valid: set[str]) -> None:
    unknown = sorted(set(keys) - valid)
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(f'{where}.{k}' for k in unknown)}"
                          f". Valid keys of {where}: {', '.join(sorted(valid - HYDRA_KEYS))}")


def check_target_node(where: str, node) -> None:
    """`node`'s keys against its `_target_`'s parameters; nested `_target_` nodes too."""
    if not isinstance(node, DictConfig):
        return
    if "_target_" in node:
        try:
            target = get_object(node._target_)
        except Exception as err:  # an unimportable target is instantiate's error to give, with its cause
            raise ConfigError(f"{where}._target_={node._target_!r} cannot be imported: {err}") from err
        valid = parameters(target)
        if valid is not None:
            _unknown(where, node.keys(), set(valid) | HYDRA_KEYS)
    for key in node:
        if not OmegaConf.is_interpolation(node, key):
            check_target_node(f"{where}.{key}", node._get_node(key))


def check_keys(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first unknown key and the valid ones."""
    for group in TARGET_GROUPS:
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        if "_target_" in node:
            check_target_node(group, node)
        else:  # a dict of entries (callbacks, logger), or evaluate.py's data overrides
            for key in node:
                if isinstance(node._get_node(key), DictConfig):
                    check_target_node(f"{group}.{key}", node._get_node(key))
    if isinstance(cfg.get("eval"), DictConfig):
        check_eval(cfg.eval)


def check_eval(eval_cfg: DictConfig) -> EvalSettings:
    """The eval.* keys and values, by their owner (EvalSettings): one line for the first wrong one."""
    return EvalSettings.from_config(eval_cfg)
