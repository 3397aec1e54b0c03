"""Moved (one release): the unknown-key check to t2i.unknown_keys, the retired model options
to t2i.retired_options; the old paths still resolve, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

__getattr__ = moved_names(__name__, {
    **{n: "t2i.unknown_keys" for n in ("HYDRA_KEYS", "TARGET_GROUPS", "CLOSED_BASES", "parameters",
                                       "check_target_node", "check_keys", "check_eval")},
    **{n: "t2i.retired_options" for n in ("RETIRED", "RETIRED_BY_TARGET", "without_retired", "drop_retired")}})
