"""A ckpt_path checked before any work: a checkpoint read without running code from it
(t2i.safe_load), or one line naming the file and what it holds instead; and one of the
model the config asks for (same class, weights of the same shapes)."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from t2i.errors import CheckpointError
from t2i.safe_load import UnsafeCheckpointError, load_torch


def describe(path: Path) -> str:
    """What a file that is not a checkpoint holds, in a few words."""
    size = path.stat().st_size
    if size == 0:
        return "an empty file (0 bytes)"
    head = path.read_bytes()[:64]
    if head.startswith(b"PK"):
        return f"a torn or corrupt torch file ({size} bytes: cut short while being written?)"
    try:
        text = head.decode("utf8")
    except UnicodeDecodeError:
        return f"{size} bytes of binary data that torch cannot read"
    return f"text ({size} bytes, starting {text.splitlines()[0][:40]!r})" if text.strip() else "whitespace"


def read_checkpoint(path: str | Path, trust: bool = False) -> dict:
    """The checkpoint, read without running code from it (t2i.safe_load; `trust`: a full
    unpickle), or one line naming the file and what it holds instead of a checkpoint."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"ckpt_path={path} is a folder: give its checkpoints/last.ckpt (or ckpt_path=last "
                              "with hydra.run.dir=<that folder>)")
    if not path.exists():
        raise CheckpointError(f"ckpt_path={path}: no such checkpoint. Use a path to a .ckpt file, or ckpt_path=last "
                              "with the run's hydra.run.dir")
    try:
        ckpt = load_torch(path, trust)
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, ValueError, AttributeError,
            ImportError, IndexError, KeyError, UnicodeDecodeError, OSError) as error:
        raise CheckpointError(f"{path} is not a checkpoint: it holds {describe(path)} "
                              f"(torch.load: {type(error).__name__})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        what = f"a {type(ckpt).__name__}" + (f" with keys {sorted(ckpt)[:6]}" if isinstance(ckpt, dict) else "")
        raise CheckpointError(f"{path} is not a Lightning checkpoint: it holds {what} and no state_dict")
    if isinstance(ckpt.get("t2i_config"), DictConfig):  # the config as plain data, however it was stored
        ckpt["t2i_config"] = OmegaConf.to_container(ckpt["t2i_config"], resolve=False)
    return ckpt


def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def check_same_model(path: str | Path, ckpt: dict, cfg: DictConfig, model) -> None:
    """A checkpoint to resume from holds this config's model: same class, weights of the
    same shapes. Otherwise one line naming what it holds and the settings that differ."""
    stored = ckpt.get("t2i_config") or {}
    stored_model, wanted = (stored.get("model") or {}), OmegaConf.to_container(cfg.model, resolve=True)
    theirs, ours = stored_model.get("_target_"), wanted.get("_target_")
    if theirs and theirs != ours:
        raise CheckpointError(f"{path} holds a {theirs.rsplit('.', 1)[-1]} checkpoint but this config builds a "
                              f"{ours.rsplit('.', 1)[-1]}: use the experiment it was trained with, or another "
                              "ckpt_path")
    own = model.state_dict()
    bad = [k for k, v in ckpt["state_dict"].items() if k not in own or tuple(own[k].shape) != tuple(v.shape)]
    bad += [k for k in own if k not in ckpt["state_dict"]]
    if bad:
        a, b = _flat(stored_model), _flat(wanted)
        differ = [f"model.{k}={a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b))
                  if a.get(k) != b.get(k)][:4]
        raise CheckpointError(f"{path} holds a {theirs or type(model).__name__} whose weights do not fit this "
                              f"config's model ({len(bad)} tensors differ, e.g. {bad[0]})"
                              + (f"; settings that differ: {'; '.join(differ)}" if differ else ""))
