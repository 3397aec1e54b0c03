"""A run folder belongs to one run. train.py takes a lock file in it (pid, host) for as
long as it writes there, refuses a folder that another live run holds or that already
holds a run (checkpoints/last.ckpt) unless told to resume (ckpt_path=last) or to start
over (overwrite=true), and takes over a lock whose process is gone. It also writes Hydra's
record of the run (.hydra/), which Hydra itself would write before any of these checks."""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import time
from pathlib import Path

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from t2i.atomic_files import atomic_write_text
from t2i.errors import RunFolderError

log = logging.getLogger("t2i")

LOCK = "run.lock"
# ckpt_path values that are not paths
RESUME_LAST = "last"   # this folder's checkpoints/last.ckpt; an error when there is none
RESUME_AUTO = "auto"   # last.ckpt when there is one, else a fresh run (schedulers that requeue a job)


def is_main_process() -> bool:
    """Rank 0 of a multi-process run (or a single process): only it owns the folder. The
    other ranks (Lightning's DDP launcher starts them with the same hydra.run.dir) do not."""
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read_lock(path: Path) -> dict:
    try:
        holder = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return holder if isinstance(holder, dict) else {}


class RunFolder:
    """The lock on one run folder; `release()` (or the with-block's end) gives it back."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.lock = self.out_dir / LOCK
        self.held = False

    def acquire(self) -> "RunFolder":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            if self._create(me):
                self.held = True
                return self
            holder = _read_lock(self.lock)
            pid, host = holder.get("pid"), holder.get("host")
            if not isinstance(pid, int) or not host:
                # _create writes the whole lock before it appears, so an empty or torn one
                # is a crash's (or an older version's) leftover, held by nobody
                log.warning("%s: taking over %s, which names no run (empty or unreadable: left by a crash)",
                            self.out_dir, self.lock)
                self.lock.unlink(missing_ok=True)
                continue
            if host == me["host"] and (pid == me["pid"] or not _alive(pid)):
                log.warning("%s: taking over the lock of run pid %s on %s (started %s), which is gone",
                            self.out_dir, pid, host, holder.get("started"))
                self.lock.unlink(missing_ok=True)
                continue
            raise RunFolderError(
                f"run folder {self.out_dir} is in use by another run (pid {pid} on {host}, started "
                f"{holder.get('started')}). Use another folder (hydra.run.dir=...) or wait for that run to end "
                f"(if it is gone, e.g. on another machine, delete {self.lock}).")
        raise RunFolderError(f"could not take the lock {self.lock}")

    def _create(self, me: dict) -> bool:
        """Write the lock whole, then link it into place (fails when one exists): another
        process never sees a lock without its holder's pid."""
        tmp = self.lock.with_name(f".{LOCK}.{os.getpid()}")
        tmp.write_text(yaml.safe_dump(me))
        try:
            os.link(tmp, self.lock)
            return True
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links: create-exclusive, then write
            return self._create_exclusive(me)
        finally:
            tmp.unlink(missing_ok=True)

    def _create_exclusive(self, me: dict) -> bool:
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(yaml.safe_dump(me))
        return True

    def release(self) -> None:
        if self.held and _read_lock(self.lock).get("pid") == os.getpid():
            self.lock.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "RunFolder":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def resume_path(cfg: DictConfig, out_dir: Path) -> str | None:
    """The checkpoint this run starts from (None: a fresh run), after checking that a fresh
    run would not replace one already in `out_dir`. `overwrite=true` clears the folder."""
    last = out_dir / "checkpoints" / "last.ckpt"
    given = cfg.get("ckpt_path")
    given = None if given in (None, "") else str(given)
    if given == RESUME_AUTO:
        given = RESUME_LAST if last.exists() else None
    if given == RESUME_LAST:
        if not last.exists():
            raise RunFolderError(
                f"ckpt_path=last: there is no run to resume in {out_dir} (no checkpoints/last.ckpt). Give the "
                "folder of the run to resume (hydra.run.dir=...), or leave ckpt_path out for a fresh run.")
        return str(last)
    inside = given is not None and Path(given).expanduser().resolve().parent == last.parent.resolve()
    if last.exists() and not inside:
        if not cfg.get("overwrite"):
            raise RunFolderError(
                f"run folder {out_dir} already holds a run (checkpoints/last.ckpt). Resume it with ckpt_path=last, "
                "start over with overwrite=true (deletes its files), or use another folder (hydra.run.dir=...).")
        clear(out_dir)
    return given


def clear(out_dir: Path) -> None:
    """overwrite=true: remove the earlier run's files (not the lock, not this run's log)."""
    keep = {LOCK, ".hydra"} | {p.name for p in out_dir.glob("*.log")}
    removed = sorted(p.name for p in out_dir.iterdir() if p.name not in keep)
    for p in out_dir.iterdir():
        if p.name not in keep:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    log.warning("overwrite=true: starting over in %s; removed the earlier run's %s", out_dir, ", ".join(removed))


def write_hydra_record(cfg: DictConfig, out_dir: Path, job: str = "train") -> None:
    """.hydra/config.yaml, hydra.yaml and overrides.yaml, as Hydra writes them (the entry
    configs turn Hydra's own writing off: it would replace another run's record before the
    lock and the checks). Called once every check has passed."""
    if not HydraConfig.initialized():  # not started by Hydra
        return
    hydra_cfg = HydraConfig.instance().cfg
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    record = record_folder(out_dir, job)
    atomic_write_text(record / "config.yaml", OmegaConf.to_yaml(task))
    atomic_write_text(record / "hydra.yaml", OmegaConf.to_yaml(hydra_cfg))
    atomic_write_text(record / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task))


def record_folder(out_dir: Path, job: str) -> Path:
    """.hydra/, except where evaluate.py or generate.py (`job`) write into a folder whose
    .hydra/ is another entry point's record (a training run's): then .hydra-<job>/, so
    report.py and export's model card keep reading the run's own record."""
    record = out_dir / ".hydra"
    if job == "train" or not (record / "config.yaml").is_file():
        return record
    try:
        theirs = (yaml.safe_load((record / "config.yaml").read_text()) or {}).get("task_name")
    except (OSError, yaml.YAMLError):
        theirs = None
    return record if theirs == job else out_dir / f".hydra-{job}"


def resume_command(out_dir: Path) -> str:
    """The command that resumes this run: its own overrides, ckpt_path=last and its folder."""
    overrides = []
    if HydraConfig.initialized():
        overrides = [o for o in HydraConfig.get().overrides.task
                     if not o.startswith(("hydra.run.dir=", "ckpt_path=", "overwrite="))]
    return "python train.py " + " ".join([*map(shlex.quote, overrides), "ckpt_path=last",
                                          override("hydra.run.dir", out_dir)])


HYDRA_SPECIAL = set(" \t'\"\\,()[]{}=:$%*?<>!~@&|#")


def override(key: str, value) -> str:
    """`key=value` as one shell word that Hydra reads back as `value`: a value with a
    space, comma, bracket or quote is quoted for Hydra, then the word for the shell."""
    text = str(value)
    if HYDRA_SPECIAL & set(text):
        text = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return shlex.quote(f"{key}={text}")
