"""Old import paths kept for one release: a module whose names moved gets a module
`__getattr__` from `moved_names` that finds each name in its new module (imported on use)
and says where it went with a DeprecationWarning. Hydra `_target_` paths in saved run
configs (`t2i.data.captions.ShapesCaptionsDataModule`) resolve through it too."""
from __future__ import annotations

import importlib
import warnings
from typing import Callable


def moved_names(old: str, moved: dict[str, str]) -> Callable[[str], object]:
    """`__getattr__` for module `old`, whose names `moved` maps to their new modules."""

    def __getattr__(name: str):
        if name not in moved:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} moved to {moved[name]}.{name}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
