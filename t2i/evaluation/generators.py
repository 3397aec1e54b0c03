"""Moved (one release) to t2i.evaluation.image_evaluation (scoring an image generator); the
old path still resolves, with a DeprecationWarning."""
from __future__ import annotations

from t2i.moved import moved_names

__getattr__ = moved_names(__name__, {n: "t2i.evaluation.image_evaluation" for n in (
    "text_matching_metrics", "caption_colours", "alignment", "score_generator", "write_pictures",
    "evaluate_generator")})
