"""Moved (one release): the settings' ranges to t2i.value_checks, the checkpoint checks to
t2i.checkpoint_checks; the old paths still resolve, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

__getattr__ = moved_names(__name__, {
    **{n: "t2i.value_checks" for n in ("MAX_IMAGES_PER_CAPTION", "INTEGERS", "HIGHEST", "NULLABLE", "check_config",
                                       "check_value")},
    **{n: "t2i.checkpoint_checks" for n in ("describe", "read_checkpoint", "check_same_model")}})
