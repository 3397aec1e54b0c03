"""Scoring a generator: one code path for the in-training monitor (val split, few
samples, numbers only) and for evaluate.py (test split, eval.num_samples, pictures), so
a number means the same thing in both."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from t2i.data.batches import eval_batches
from t2i.evaluation.alignment import alignment_classifier, alignment_metrics, derangement
from t2i.evaluation.colour import colour_metrics
from t2i.evaluation.features import is_captioned
from t2i.evaluation.matching import dataset_name, matching_evaluator
from t2i.evaluation.outlines import outline_metrics
from t2i.evaluation.pictures import (
    captions_picture,
    colour_grouped_items,
    distinct_caption_items,
    latent_interpolation,
    log_pictures,
    save_grid,
    text_interpolation,
)
from t2i.evaluation.r_precision import caption_codes, r_precision
from t2i.evaluation.scores import image_quality
from t2i.evaluation.settings import EvalSettings
from t2i.image_generator import is_text_to_image

log = logging.getLogger("t2i")


def text_matching_metrics(fake: torch.Tensor, batches: list[dict], datamodule, settings: EvalSettings) -> dict:
    """R-precision of generated images (with the real ceiling and shuffled floor) in the
    matching evaluator's space."""
    captions = [c for b in batches for c in b["caption"]]
    distinct = int(caption_codes(captions).unique().numel())
    if distinct < 100:  # no score rather than a crash: the monitor's val split can be this small
        if getattr(datamodule, "target_names", None):
            why = f"{type(datamodule).__name__} is scored by alignment_accuracy instead"
        else:
            why = "raise eval.num_samples (eval.monitor_samples during training) or use a bigger split"
            log.warning("R-precision skipped: %d distinct captions, it needs 100 (1 + 99 distractors); %s",
                        distinct, why)
        return {"r_precision": None, "r_precision_note": f"{distinct} distinct captions: R-precision needs 100 "
                f"(1 + 99 distractors); {why}"}
    evaluator, report = matching_evaluator(datamodule, settings.cache, settings.matching)
    token_ids, length = torch.cat([b["token_ids"] for b in batches]), torch.cat([b["length"] for b in batches])
    text = evaluator.embed_texts(token_ids, length)
    real = torch.cat([b["image"] for b in batches])
    draws, seed = settings.r_precision_draws, settings.seed
    fake_emb = evaluator.embed_images(fake)
    ours, ours_std = r_precision(fake_emb, text, captions, draws=draws, seed=seed)
    ceiling, _ = r_precision(evaluator.embed_images(real), text, captions, draws=draws, seed=seed)
    floor, _ = r_precision(fake_emb, text, captions, truth=derangement(len(captions), seed), draws=draws, seed=seed)
    return {"r_precision": ours, "r_precision_std": ours_std, "r_precision_real": ceiling,
            "r_precision_shuffled": floor, "r_precision_protocol":
            f"matching evaluator ({dataset_name(datamodule)}, trained on train) | {len(captions)} test captions "
            f"(spread over the split), 1 true + 99 distractors, {draws} draws", **report}


def caption_colours(fake: torch.Tensor, batches: list[dict], settings: EvalSettings) -> dict:
    """colour_accuracy of generated RGB images, its real ceiling and shuffled floor (the
    same derangement of captions as R-precision's floor)."""
    if fake.shape[1] != 3:  # grey images (shapes) name no colour
        return {}
    captions = [c for b in batches for c in b["caption"]]
    real = torch.cat([b["image"] for b in batches])
    return colour_metrics(fake, real, captions, derangement(len(captions), settings.seed))


def alignment(fake: torch.Tensor, batches: list[dict], datamodule, settings: EvalSettings) -> dict:
    targets = torch.cat([b["targets"] for b in batches])
    real = torch.cat([b["image"] for b in batches])
    classifier = alignment_classifier(datamodule, settings.cache)
    return {**alignment_metrics(classifier, fake, real, targets, seed=settings.seed),
            **outline_metrics(fake, real, targets, datamodule.target_names)}


def score_generator(model, datamodule, settings, split: str, n: int, reference: str | None = None
                    ) -> tuple[dict, torch.Tensor, list[dict]]:
    """Generate one image per item of n items of `split` (spread over it), and score them:
    FID/KID/precision/recall against the reference split, plus R-precision and alignment
    where the data has captions / attribute targets. Returns (metrics, images, batches)."""
    settings = EvalSettings.of(settings)
    bs = settings.batch_size
    batches = list(eval_batches(datamodule, n, bs, split))
    fake = model.sample(batches)
    metrics = image_quality(fake, datamodule, settings, settings.cache, generated_from=split,
                            reference=reference)
    if is_captioned(datamodule) and "token_ids" in batches[0]:
        metrics.update(text_matching_metrics(fake, batches, datamodule, settings))
        metrics.update(caption_colours(fake, batches, settings))
    if getattr(datamodule, "target_names", None) and all("targets" in b for b in batches) \
            and "word_vectors" in batches[0]:
        metrics.update(alignment(fake, batches, datamodule, settings))
    return metrics, fake, batches


def write_pictures(model, datamodule, settings: EvalSettings, out_dir: Path, fake: torch.Tensor) -> list[Path]:
    """samples.png; interpolation.png where z matters (`model.uses_noise`); for
    text-to-image models, captions.png and text_interpolation.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = settings.seed
    paths = [out_dir / "samples.png"]
    save_grid(fake, paths[0])
    collate = getattr(datamodule, "collate_fn", None) or torch.utils.data.default_collate
    text_model = is_text_to_image(model) and is_captioned(datamodule)
    if text_model:
        k, m = settings.num_captions, settings.images_per_caption
        items = distinct_caption_items(datamodule.test_set, 2 * k)
        shown = colour_grouped_items(datamodule.test_set, k)
        generated = model.images_for_text(collate(shown), m, seed=seed)
        captions_picture([it["caption"] for it in shown], torch.stack([it["image"] for it in shown]),
                         generated, out_dir / "captions.png")
        rows = collate(items[:k])
        paths.insert(1, out_dir / "captions.png")
        half = len(items) // 2
        if half:
            text_interpolation(model, collate(items[:half]), collate(items[half:2 * half]),
                               out_dir / "text_interpolation.png", seed=seed)
            paths.append(out_dir / "text_interpolation.png")
    else:
        rows = next(iter(eval_batches(datamodule, 8, 8, "test")))
    if model.uses_noise:
        latent_interpolation(model, rows, out_dir / "interpolation.png", seed=seed)
        paths.append(out_dir / "interpolation.png")
    log_pictures(paths)
    return paths


def evaluate_generator(model, datamodule, settings, out_dir: Path) -> dict:
    """evaluate.py for every GAN: eval.num_samples images from the test split's
    conditioning, scored, and the pictures."""
    settings = EvalSettings.of(settings)
    metrics, fake, _ = score_generator(model, datamodule, settings, "test", settings.num_samples)
    write_pictures(model, datamodule, settings, out_dir, fake)
    return metrics

