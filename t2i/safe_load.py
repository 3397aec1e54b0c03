"""Reading a torch file (a checkpoint) without running code from it.

A `.ckpt` is a pickle, and unpickling calls whatever function the file names: a
checkpoint from a stranger could run `os.system`. Every checkpoint read in this project
goes through `load_torch`, which uses torch's restricted unpickler (`weights_only=True`)
and allows, beyond tensors and plain containers, only the types this project's own
checkpoints have ever held: omegaconf's containers (a model setting given as a
DictConfig or ListConfig lands in Lightning's `hyper_parameters`) and their parts. Today
the run's config travels as plain dicts (`t2i_config`), so new checkpoints need none of
them. Anything else is refused, naming the type; `trust=True` (`trust_checkpoint=true`
on the command line) is the explicit opt-in to a full, code-running unpickle."""
from __future__ import annotations

import collections
import pathlib
import pickle
import re
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from omegaconf import DictConfig, ListConfig
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.nodes import AnyNode, BooleanNode, BytesNode, FloatNode, IntegerNode, PathNode, StringNode

from t2i.errors import CheckpointError

# Unpickling these constructs data and nothing else (no calls into the OS, no imports).
SAFE_GLOBALS: list = [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, BooleanNode, BytesNode,
                      FloatNode, IntegerNode, PathNode, StringNode, collections.defaultdict, (typing.Any, "typing.Any"),
                      dict, list, tuple, set, int, float, str, bool, pathlib.PosixPath, pathlib.PurePosixPath]
TRUST = "trust_checkpoint=true"
_GLOBAL = re.compile(r"GLOBAL ([\w.]*\w)")


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that needs a type outside SAFE_GLOBALS: it was not loaded."""

    def __init__(self, path: Path, name: str):
        super().__init__(f"{path} was not loaded: it needs {name}, which this project's checkpoints never hold, and "
                         f"unpickling it could run code. Load it only if you trust whoever made it: add {TRUST}")
        self.type_name = name


@contextmanager
def allowed_types() -> Iterator[None]:
    """Around a load that is not ours (Lightning's resume): the same allow-list."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        yield


def load_torch(path: str | Path, trust: bool = False) -> Any:
    """torch.load on CPU, refusing (UnsafeCheckpointError) any type outside SAFE_GLOBALS
    unless `trust`. Other read errors (a torn or non-torch file) pass through."""
    path = Path(path)
    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with allowed_types():
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise  # not a refusal: a broken file, for the caller to describe
        found = _GLOBAL.search(str(error))
        raise UnsafeCheckpointError(path, found.group(1) if found else "an object outside torch's safe types") \
            from None
