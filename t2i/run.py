"""What train.py and evaluate.py do, as functions tests can call with a composed config."""
from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from t2i.atomic_files import AtomicCheckpointIO, atomic_write_text
from t2i.callbacks.checkpointing import ConfigInCheckpoint, SaveOnStop
from t2i.callbacks.eval_monitor import EvalMonitor
from t2i.callbacks.progress import progress_bars
from t2i.checkpoint_checks import check_same_model, read_checkpoint
from t2i.errors import CheckpointError, ConfigError, RunStopped
from t2i.evaluation.settings import EvalSettings
from t2i.image_generator import ImageGenerator, is_text_to_image
from t2i.loggers import finish_wandb
from t2i.precision import apply_precision
from t2i.retired_options import drop_retired
from t2i.run_folder import RunFolder, is_main_process, resume_command, resume_path, write_hydra_record
from t2i.safe_load import allowed_types
from t2i.summary import print_summary
from t2i.unknown_keys import check_keys
from t2i.value_checks import check_config

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
    """The checkpoint train() starts from: null (fresh), `last` (this run folder's
    last.ckpt, which must exist), `auto` (last.ckpt if there is one) or a path. Refuses
    a fresh start over a folder that already holds a run unless overwrite=true."""
    path = resume_path(cfg, output_dir(cfg))
    if path is not None:  # a one-line error when it is not a checkpoint (or not a safe one), before any work
        read_checkpoint(path, trusted(cfg))
    return path


def trusted(cfg: DictConfig) -> bool:
    """trust_checkpoint=true: the user vouches for the checkpoint, which is then fully
    unpickled (it may run code); otherwise only the types of t2i.safe_load are read."""
    return bool(cfg.get("trust_checkpoint"))


def build(cfg: DictConfig):
    """Data module and model from the config (the model sees the data's shapes through
    interpolations such as ${data.channels})."""
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    return datamodule, model


def train(cfg: DictConfig) -> dict:
    """Fit (or resume), then optionally evaluate. Returns the final logged metrics. Holds
    the run folder's lock throughout (rank 0; the other ranks write where it says)."""
    settings = check_config(cfg) or EvalSettings()  # the evaluation settings, built once here
    check_keys(cfg)
    if not is_main_process():  # DDP ranks > 0: rank 0 has checked the folder and holds it
        last = output_dir(cfg) / "checkpoints" / "last.ckpt"
        given = cfg.get("ckpt_path") or None
        return _train(cfg, str(last) if given in ("last", "auto") and last.exists() else given, settings)
    with RunFolder(output_dir(cfg)):
        return _train(cfg, resolve_ckpt_path(cfg), settings)


def _train(cfg: DictConfig, ckpt_path: str | None, settings: EvalSettings) -> dict:
    apply_precision(cfg.trainer)  # before the config is stored in checkpoints: they record the concrete one
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model = build(cfg)
    if ckpt_path is not None and is_main_process():
        check_same_model(ckpt_path, read_checkpoint(ckpt_path, trusted(cfg)), cfg, model)
    stop = SaveOnStop(output_dir(cfg) / "checkpoints")
    callbacks = instantiate_group(cfg.get("callbacks"))
    callbacks += [ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)), stop, *progress_bars(cfg.trainer)]
    monitor = None
    if settings.every_n_steps > 0:
        check_monitored(model, settings)
        monitor = EvalMonitor(settings, output_dir(cfg) / "checkpoints")
        callbacks.append(monitor)
        if trainer_is_real(cfg):
            monitor.prepare(datamodule)
    loggers = instantiate_group(cfg.get("logger"))
    plugins = [*(hydra.utils.instantiate(cfg.trainer.get("plugins")) or []), AtomicCheckpointIO()]
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                  plugins=plugins)
    if is_main_process():  # every check has passed: the record may replace an earlier one
        write_hydra_record(cfg, output_dir(cfg))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        with allowed_types():  # Lightning's own read of ckpt_path: the same allow-list, no code run
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not trusted(cfg))
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        if not trainer.fast_dev_run:
            # The final state, always: ModelCheckpoint skips it in some cases (a resumed
            # run whose restored callback state says "last" was already written,
            # trainer.max_steps=0 for an untrained baseline to evaluate, ...).
            trainer.save_checkpoint(output_dir(cfg) / "checkpoints" / "last.ckpt", weights_only=False)
    except BaseException as error:
        finish_wandb(exit_code=1)
        if stop.stopped_by is not None:
            # SIGTERM, Ctrl-C, SIGUSR1/2 after last.ckpt was saved: not finished, exit 128 + signal
            message = (f"stopped at step {trainer.global_step} ({signal.Signals(stop.stopped_by).name}); "
                       f"last.ckpt saved. Resume: {resume_command(output_dir(cfg))}")
            log.warning("%s", message)
            raise RunStopped(stop.stopped_by, message) from error
        if stop.signum is not None:  # a second Ctrl-C before the save began (Lightning then exits 1)
            message = (f"stopped at step {trainer.global_step} ({signal.Signals(stop.signum).name} twice): nothing "
                       f"saved at this stop (an earlier last.ckpt stays). Resume: {resume_command(output_dir(cfg))}")
            log.warning("%s", message)
            raise RunStopped(stop.signum, message) from None
        raise
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    if cfg.get("evaluate_after_fit") and trainer.is_global_zero and not trainer.fast_dev_run:
        which, step = choose_weights(model, cfg, settings, monitor, trainer.global_step)
        metrics.update(evaluate_model(model, datamodule, cfg, output_dir(cfg), checkpoint=which, step=step,
                                      settings=settings))
    finish_wandb(exit_code=0)
    if trainer.is_global_zero and not trainer.fast_dev_run:
        print_summary(cfg, metrics, output_dir(cfg), example_caption(datamodule, model))
    return metrics


def example_caption(datamodule, model) -> str | None:
    """A held-out caption for the summary's generate command; None unless the model draws from text."""
    if not is_text_to_image(model):
        return None
    split = getattr(datamodule, "test_set", None) or getattr(datamodule, "val_set", None)
    captions = getattr(split, "captions", None)
    return captions[len(captions) // 2] if captions else None


def trainer_is_real(cfg: DictConfig) -> bool:
    """Not a fast_dev_run (which never evaluates)."""
    return not cfg.trainer.get("fast_dev_run")


def check_monitored(model, settings: EvalSettings) -> None:
    """The in-training monitor scores image generators (FID, R-precision, alignment); on
    any other model it would compare the wrong things, so it is refused before training."""
    if not isinstance(model, ImageGenerator):
        raise ConfigError(f"eval.every_n_steps={settings.every_n_steps} scores an image generator during "
                          f"training, and {type(model).__name__} is not one (its validation loss is logged "
                          "each epoch instead): set eval.every_n_steps=0")


def choose_weights(model, cfg: DictConfig, settings: EvalSettings, monitor: EvalMonitor | None,
                   last_step: int) -> tuple[str, int]:
    """The weights the evaluation after fit scores: best.ckpt (by eval.best_by) when the
    monitor kept one and eval.use_best, else the last ones. Loads them into `model`."""
    best = output_dir(cfg) / "checkpoints" / "best.ckpt"
    if monitor is None or not settings.use_best:
        if isinstance(model, ImageGenerator) and cfg.get("evaluate_after_fit"):
            log.info("evaluating the last weights (step %d): no in-training monitor (eval.every_n_steps=0), so no "
                     "best.ckpt", last_step)
        return "last", last_step
    if not best.exists():
        log.warning("no %s was written (no monitor step reached): evaluating the last weights", best)
        return "last", last_step
    state = read_checkpoint(best)
    model.load_state_dict(state["state_dict"])
    which = "the last weights" if monitor.best_step == last_step else f"rather than the last weights (step {last_step})"
    log.info("evaluating best.ckpt (step %d, %s %.3f): %s", monitor.best_step, monitor.metric, monitor.best_score,
             which)
    return "best", int(state.get("global_step", monitor.best_step))


def load_checkpoint(ckpt_path: str, overrides: DictConfig | None = None, trust: bool = False):
    """A model and data module rebuilt from a checkpoint's stored config. `overrides`
    (e.g. data.root) replace values of the stored config; `trust`: see trusted()."""
    path = Path(ckpt_path).expanduser()
    return rebuild(read_checkpoint(path, trust), path, overrides)


def rebuild(ckpt: dict, path: Path, overrides: DictConfig | None = None):
    """load_checkpoint on a checkpoint already read (read_checkpoint)."""
    if "t2i_config" not in ckpt:
        raise CheckpointError(f"{path} has no stored t2i config: was it written by this project's train.py?")
    cfg = drop_retired(OmegaConf.create(ckpt["t2i_config"]))
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


def evaluate_model(model, datamodule, cfg: DictConfig, out_dir: Path, checkpoint: str | None = None,
                   step: int | None = None, settings: EvalSettings | None = None) -> dict:
    """`model.evaluate` with the settings (by default: built from cfg.eval) into metrics.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = model.evaluate(datamodule, settings or EvalSettings.from_config(cfg.get("eval")), out_dir)
    if checkpoint is not None:
        metrics.update(checkpoint=checkpoint, step=step)
    if cfg.get("trainer") is not None:  # the arithmetic the weights were trained in
        metrics["trainer_precision"] = str(cfg.trainer.get("precision", "32"))
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True))
    log.info("metrics written to %s:\n%s", out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def evaluate(cfg: DictConfig) -> dict:
    """evaluate.py: checkpoint -> metrics.json and pictures in hydra.run.dir."""
    if not cfg.get("ckpt_path"):
        raise ConfigError("evaluate.py needs ckpt_path=PATH/TO/last.ckpt")
    settings = check_config(cfg) or EvalSettings()  # built once here, passed down
    check_keys(cfg)
    overrides = OmegaConf.create({"eval": OmegaConf.to_container(cfg.eval)})
    data_overrides = {k: v for k, v in (cfg.get("data") or {}).items() if v is not None}
    if data_overrides:  # e.g. data.root=... given on the command line
        overrides.data = data_overrides
    with RunFolder(output_dir(cfg)):  # never into a folder a run (or another evaluation) is writing
        path = evaluated_checkpoint(cfg.ckpt_path)
        ckpt = read_checkpoint(path, trusted(cfg))
        model, datamodule, run_cfg = rebuild(ckpt, Path(path), overrides)
        pl.seed_everything(cfg.seed, workers=True)
        device = torch.device(cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
        model.to(device)
        write_hydra_record(cfg, output_dir(cfg), job="evaluate")
        return evaluate_model(model, datamodule, run_cfg, output_dir(cfg), checkpoint=Path(path).stem,
                              step=ckpt.get("global_step"), settings=settings)


def evaluated_checkpoint(ckpt_path: str) -> str:
    """ckpt_path as given; a missing best.ckpt (the run had no monitor) falls back to the
    last.ckpt beside it, with a log line."""
    path = Path(ckpt_path).expanduser()
    if not path.exists() and path.name == "best.ckpt" and (path.parent / "last.ckpt").exists():
        log.warning("%s does not exist (the run kept no best checkpoint: eval.every_n_steps=0?): evaluating "
                    "last.ckpt instead", path)
        return str(path.parent / "last.ckpt")
    return str(path)
