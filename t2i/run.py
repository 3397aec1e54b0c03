"""What train.py and evaluate.py do, as functions tests can call with a composed config."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from t2i.callbacks.checkpointing import ConfigInCheckpoint, SaveOnSigterm
from t2i.callbacks.progress import progress_bars
from t2i.loggers import finish_wandb
from t2i.summary import print_summary

log = logging.getLogger("t2i")


def output_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every `_target_` entry of a dict-like config group (callbacks, loggers)."""
    out = []
    for _, conf in (group or {}).items():
        if isinstance(conf, DictConfig) and "_target_" in conf:
            out.append(hydra.utils.instantiate(conf))
    return out


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """`ckpt_path=last` means this run directory's last checkpoint, if there is one."""
    if cfg.get("ckpt_path") in (None, ""):
        return None
    if cfg.ckpt_path == "last":
        last = output_dir(cfg) / "checkpoints" / "last.ckpt"
        if last.exists():
            return str(last)
        log.warning("ckpt_path=last but %s does not exist: starting a fresh run", last)
        return None
    path = Path(cfg.ckpt_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint. Use a path to a .ckpt "
                                "file, or ckpt_path=last with the run's hydra.run.dir.")
    return str(path)


def build(cfg: DictConfig):
    """Data module and model from the config (the model sees the data's shapes through
    interpolations such as ${data.channels})."""
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    return datamodule, model


def train(cfg: DictConfig) -> dict:
    """Fit (or resume), then optionally evaluate. Returns the final logged metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model = build(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    callbacks += [ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)),
                  SaveOnSigterm(output_dir(cfg) / "checkpoints"), *progress_bars(cfg.trainer)]
    loggers = instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg))
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        if not trainer.fast_dev_run:
            # The final state, always: ModelCheckpoint skips it in some cases (a resumed
            # run whose restored callback state says "last" was already written,
            # trainer.max_steps=0 for an untrained baseline to evaluate, ...).
            trainer.save_checkpoint(output_dir(cfg) / "checkpoints" / "last.ckpt", weights_only=False)
    except BaseException:
        finish_wandb(exit_code=1)
        raise
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    if cfg.get("evaluate_after_fit") and trainer.is_global_zero and not trainer.fast_dev_run:
        metrics.update(evaluate_model(model, datamodule, cfg, output_dir(cfg)))
    finish_wandb(exit_code=0)
    if trainer.is_global_zero and not trainer.fast_dev_run:
        print_summary(cfg, metrics, output_dir(cfg))
    return metrics


def load_checkpoint(ckpt_path: str, overrides: DictConfig | None = None):
    """A model and data module rebuilt from a checkpoint's stored config. `overrides`
    (e.g. data.root) replace values of the stored config."""
    path = Path(ckpt_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if "t2i_config" not in ckpt:
        raise ValueError(f"{path} has no stored t2i config: was it written by this project's train.py?")
    cfg = OmegaConf.create(ckpt["t2i_config"])
    if overrides is not None:
        cfg = OmegaConf.merge(cfg, overrides)
    datamodule, model = build(cfg)
    model.load_state_dict(ckpt["state_dict"])
    # Lightning stores a data module's state_dict() (e.g. its vocabulary and word
    # vectors) under its class name: generation then needs no dataset on disk.
    state = ckpt.get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)
    return model, datamodule, cfg


def evaluate_model(model, datamodule, cfg: DictConfig, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = model.evaluate(datamodule, cfg.eval, out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    log.info("metrics written to %s:\n%s", out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def evaluate(cfg: DictConfig) -> dict:
    """evaluate.py: checkpoint -> metrics.json and pictures in hydra.run.dir."""
    if not cfg.get("ckpt_path"):
        raise ValueError("evaluate.py needs ckpt_path=PATH/TO/last.ckpt")
    overrides = OmegaConf.create({"eval": OmegaConf.to_container(cfg.eval)})
    data_overrides = {k: v for k, v in (cfg.get("data") or {}).items() if v is not None}
    if data_overrides:  # e.g. data.root=... given on the command line
        overrides.data = data_overrides
    model, datamodule, run_cfg = load_checkpoint(cfg.ckpt_path, overrides)
    pl.seed_everything(cfg.seed, workers=True)
    device = torch.device(cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    return evaluate_model(model, datamodule, run_cfg, output_dir(cfg))
