"""Evaluation, one job per file: feature spaces (features), cached reference features
(reference), the text-image matching evaluator (matching), the numbers (scores), the
pictures (pictures), and scoring a generator (generators), shared by evaluate.py and the
in-training monitor. Below the tasks: it never imports a task or t2i.run."""
from t2i.evaluation.batches import eval_batches, split_images
from t2i.evaluation.generators import (
           evaluate_generator,
           evaluate_text_to_image,
           evaluate_unconditional,
           score_generator,
)
from t2i.evaluation.scores import image_quality

__all__ = ["eval_batches", "split_images", "evaluate_generator", "evaluate_text_to_image", "evaluate_unconditional",
           "score_generator", "image_quality"]
