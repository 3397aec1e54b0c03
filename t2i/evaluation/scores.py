"""Image-quality numbers from features, through torch-fidelity's implementations:
FID, KID, precision/recall (Kynkaenniemi et al. 2019, k = 3) and, with Inception, IS.
Every result carries its protocol (`fid_protocol`): feature network, counts, reference.

Density/coverage (Naeem et al. 2020) are left out: the one package that computes them
(prdc) has had no release since 2020."""
from __future__ import annotations

import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from t2i.evaluation.features import INCEPTION, FeatureSpace, feature_space
from t2i.evaluation.reference import reference_features
from t2i.evaluation.settings import EvalSettings


def protocol(space: str, generated: int, generated_from: str, reference: int, reference_split: str) -> str:
    """One readable line: what a number was computed on."""
    return (f"{space} | {generated} generated (from {generated_from} conditioning) vs "
            f"{reference} real {reference_split} images")


def feature_metrics(fake: torch.Tensor, real: torch.Tensor, kid_subset_size: int = 100, seed: int = 0) -> dict:
    """FID, KID, precision, recall of fake (N, D) against real (M, D) features."""
    fake, real = fake.double(), real.double()
    if len(fake) < 2 or len(real) < 2:
        raise ValueError(f"FID needs at least 2 generated and 2 real images, got {len(fake)} and {len(real)}")
    fid = fid_statistics_to_metric(fid_features_to_statistics(fake), fid_features_to_statistics(real),
                                   verbose=False)["frechet_inception_distance"]
    subset = int(min(kid_subset_size, len(fake), len(real)))
    kid = kid_features_to_metric(fake, real, kid_subset_size=subset, kid_subsets=100, rng_seed=seed, verbose=False)
    k = min(3, len(fake) - 1, len(real) - 1)
    prc = prc_features_to_metric(fake.float(), real.float(), prc_neighborhood=k, prc_batch_size=10000,
                                 save_cpu_ram=len(real) > 10000, verbose=False)
    return dict(fid=float(fid), kid_mean=kid["kernel_inception_distance_mean"],
                kid_std=kid["kernel_inception_distance_std"], precision=float(prc["precision"]),
                recall=float(prc["recall"]))


def reference_split(settings) -> str:
    """eval.reference_split (checked by EvalSettings)."""
    return EvalSettings.of(settings).reference_split


def image_quality(fake: torch.Tensor, datamodule, settings, cache_dir, generated_from: str = "test",
                  reference: str | None = None, count: int | None = None,
                  space: FeatureSpace | None = None) -> dict:
    """FID/KID/precision/recall (and IS with Inception) of `fake` (images in [-1, 1])
    against `count` (default: as many as fake) real images of the reference split."""
    settings = EvalSettings.of(settings)
    space = space or feature_space(settings, datamodule, cache_dir)
    reference = reference or settings.reference_split
    bs = settings.batch_size
    real = reference_features(space, datamodule, reference, count or len(fake), cache_dir, bs)
    metrics = dict(space.report)
    metrics.update(feature_metrics(space.extract(fake), real, settings.kid_subset_size, settings.seed))
    metrics.update(num_samples=len(fake), num_reference=len(real), fid_feature_extractor=space.name,
                   fid_reference_split=reference,
                   fid_protocol=protocol(space.name, len(fake), generated_from, len(real), reference))
    if space.logits is not None:
        isc = isc_features_to_metric(space.logits(fake).float(), splits=10)
        metrics.update(is_mean=float(isc["inception_score_mean"]), is_std=float(isc["inception_score_std"]))
    elif space.name != INCEPTION:
        metrics.update(is_mean=None, is_std=None,
                       is_note="Inception Score needs Inception weights (eval.inception_weights=PATH); "
                               "it is left out rather than computed in another network's space.")
    return metrics
