"""Tokenising: lower case, HTML line breaks removed, split on anything that is not a
letter, digit or an in-word apostrophe ("don't" stays one token)."""
from __future__ import annotations

import re

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"expected a caption/review string, got {type(text).__name__}")
    return _TOKEN.findall(_BR.sub(" ", text).lower())
