"""FID, KID and IS through torchmetrics, in Inception space when weights exist, else in
a clearly labelled domain feature space (`fid_feature_extractor = domain:<name>`)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from t2i.metrics.domain import DomainFeatures, train_domain_classifier

log = logging.getLogger("t2i")
INCEPTION = "inception-v3-compat"
# Evaluation runs in one process over the whole sample (after DDP training, on rank 0
# only): torchmetrics must not gather states from other ranks, which have left or would
# add their own copies of the images.
SINGLE_PROCESS = dict(sync_on_compute=False)


def _inception_available(weights: str | None) -> bool:
    try:
        FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights)
        return True
    except Exception as err:  # no file and no network: torch-fidelity's download fails
        log.warning("Inception weights unavailable (%s: %s)", type(err).__name__, str(err)[:200])
        return False


def feature_extractor(eval_cfg, datamodule, cache_dir: str | Path) -> tuple[str, object, dict]:
    """Pick the feature space. Returns (label, torchmetrics `feature` argument, extra metrics)."""
    choice = eval_cfg.get("feature_extractor", "auto")
    if choice not in ("auto", "inception", "domain"):
        raise ValueError(f"eval.feature_extractor must be auto|inception|domain, got {choice!r}")
    weights = eval_cfg.get("inception_weights")
    if weights and not Path(weights).expanduser().exists():
        raise FileNotFoundError(f"eval.inception_weights={weights}: no such file")
    if choice == "inception" or (choice == "auto" and _inception_available(weights)):
        return INCEPTION, 2048, {}
    if getattr(datamodule, "domain_name", None) is None:
        raise RuntimeError(
            "No Inception weights (give eval.inception_weights=PATH to pt_inception-2015-12-05-6726825d.pth) "
            f"and {type(datamodule).__name__} has no domain feature extractor: cannot compute FID/KID.")
    classifier, acc = train_domain_classifier(datamodule, cache_dir)
    extra = {f"domain_classifier_accuracy/{k}": v for k, v in acc.items()}
    return f"domain:{datamodule.domain_name}", DomainFeatures(classifier), extra


def _batches(images: torch.Tensor, size: int):
    for s in range(0, len(images), size):
        yield images[s:s + size]


def _as_inception_input(x: torch.Tensor) -> torch.Tensor:
    x = (x.float().clamp(-1, 1) + 1) * 127.5
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.round().to(torch.uint8)


def image_quality(real: torch.Tensor, fake: torch.Tensor, eval_cfg, datamodule, cache_dir) -> dict:
    """FID/KID (and IS with Inception) of `fake` against `real`, both in [-1, 1]."""
    label, feature, metrics = feature_extractor(eval_cfg, datamodule, cache_dir)
    n = min(len(real), len(fake))
    subset = int(min(eval_cfg.get("kid_subset_size", 100), n))
    bs = int(eval_cfg.get("batch_size", 100))
    if label == INCEPTION:
        kw = dict(feature_extractor_weights_path=eval_cfg.get("inception_weights"), **SINGLE_PROCESS)
        fid = FrechetInceptionDistance(feature=2048, **kw)
        kid = KernelInceptionDistance(feature=2048, subset_size=subset, **kw)
        iscore = InceptionScore(**kw)
        prep = _as_inception_input
    else:
        fid = FrechetInceptionDistance(feature=feature, normalize=True, **SINGLE_PROCESS)
        kid = KernelInceptionDistance(feature=feature, subset_size=subset, normalize=True, **SINGLE_PROCESS)
        iscore = None
        prep = lambda x: (x.float().clamp(-1, 1) + 1) / 2  # noqa: E731
    for batch in _batches(real[:n], bs):
        fid.update(prep(batch), real=True)
        kid.update(prep(batch), real=True)
    for batch in _batches(fake[:n], bs):
        fid.update(prep(batch), real=False)
        kid.update(prep(batch), real=False)
        if iscore is not None:
            iscore.update(prep(batch))
    kid_mean, kid_std = kid.compute()
    metrics.update(fid=float(fid.compute()), kid_mean=float(kid_mean), kid_std=float(kid_std),
                   num_samples=n, fid_feature_extractor=label)
    if iscore is not None:
        is_mean, is_std = iscore.compute()
        metrics.update(is_mean=float(is_mean), is_std=float(is_std))
    else:
        metrics.update(is_mean=None, is_std=None,
                       is_note="Inception Score needs Inception weights (eval.inception_weights=PATH); "
                               "it is left out rather than computed on a domain classifier.")
        log.warning("IS left out: %s", metrics["is_note"])
    return metrics
