"""Feature spaces for FID/KID/precision/recall, each with a label that goes beside every
number it produces:

- `inception-v3-compat`: the standard (torch-fidelity's Inception, weights from a local file);
- `domain:<dataset>`: a classifier trained on the dataset's labels (MNIST, CIFAR-10, shapes);
- `domain:<dataset>-matching`: the image tower of the text-image matching evaluator
  (captioned photos: Flickr, CUB, Flowers).

Only Inception numbers compare with papers; the `domain:` ones compare between runs here.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from t2i.evaluation.domain import cache_key, train_domain_classifier
from t2i.evaluation.matching import dataset_name, matching_evaluator
from t2i.evaluation.settings import EvalSettings
from t2i.images import to_uint8

log = logging.getLogger("t2i")
INCEPTION = "inception-v3-compat"
_announced: set[str] = set()


@dataclass
class FeatureSpace:
    name: str                                   # the label written beside every number
    extract: Callable[[torch.Tensor], torch.Tensor]   # images in [-1, 1] -> (N, D) float64
    fingerprint: str                            # what the features depend on (reference cache key)
    logits: Callable[[torch.Tensor], torch.Tensor] | None = None  # Inception's, for IS
    report: dict = field(default_factory=dict)  # e.g. the classifier's held-out accuracy


def _batched(fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(images[s:s + batch_size]) for s in range(0, len(images), batch_size)]).double()


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}-{stat.st_size}"


def inception_space(weights: str | None, batch_size: int) -> FeatureSpace:
    net = FeatureExtractorInceptionV3(INCEPTION, ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=weights).eval()

    def uint8(x: torch.Tensor) -> torch.Tensor:
        x = to_uint8(x)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    extract = lambda x: _batched(lambda b: net(uint8(b))[0], x, batch_size)  # noqa: E731
    logits = lambda x: _batched(lambda b: net(uint8(b))[1], x, batch_size)  # noqa: E731
    fingerprint = _file_digest(Path(weights).expanduser()) if weights else "torch-fidelity-download"
    return FeatureSpace(INCEPTION, extract, fingerprint, logits)


def domain_space(datamodule, cache_dir, batch_size: int) -> FeatureSpace:
    classifier, acc = train_domain_classifier(datamodule, cache_dir)
    extract = lambda x: _batched(lambda b: classifier.features(b.float()), x, batch_size)  # noqa: E731
    report = {f"domain_classifier_accuracy/{k}": v for k, v in acc.items()}
    return FeatureSpace(f"domain:{datamodule.domain_name}", extract, f"classifier-{cache_key(datamodule)}",
                        report=report)


def matching_space(datamodule, cache_dir, batch_size: int, settings=None) -> FeatureSpace:
    evaluator, report = matching_evaluator(datamodule, cache_dir, settings)
    digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in evaluator.image.parameters()))
    extract = lambda x: evaluator.image_features(x, batch_size).double()  # noqa: E731
    return FeatureSpace(f"domain:{dataset_name(datamodule)}-matching", extract, f"matching-{digest.hexdigest()[:12]}",
                        report=dict(report))


def is_captioned(datamodule) -> bool:
    return hasattr(datamodule, "vocabulary")


def feature_space(settings, datamodule, cache_dir) -> FeatureSpace:
    """The space FID/KID/precision/recall are computed in (eval.feature_extractor):
    auto = Inception when eval.inception_weights is given, else the data's own space.
    No download is attempted unless feature_extractor=inception is asked for explicitly."""
    settings = EvalSettings.of(settings)
    choice, weights = settings.feature_extractor, settings.inception_weights
    if weights and not Path(weights).expanduser().exists():
        raise FileNotFoundError(f"eval.inception_weights={weights}: no such file (torch-fidelity's "
                                "pt_inception-2015-12-05-6726825d.pth)")
    bs = settings.batch_size
    has_domain = getattr(datamodule, "domain_name", None) is not None
    if choice == "inception" or (choice == "auto" and weights):
        space = inception_space(weights, bs)
    elif choice == "domain" or (choice == "auto" and has_domain):
        if not has_domain:
            raise ValueError(f"eval.feature_extractor=domain: {type(datamodule).__name__} has no labels for a "
                             "domain classifier; use auto, matching (captioned data) or inception")
        space = domain_space(datamodule, cache_dir, bs)
    elif is_captioned(datamodule):
        space = matching_space(datamodule, cache_dir, bs, settings.matching)
    else:
        raise RuntimeError(f"No feature space for {type(datamodule).__name__}: give eval.inception_weights=PATH "
                           "(pt_inception-2015-12-05-6726825d.pth) to compute FID/KID")
    if space.name != INCEPTION and space.name not in _announced:
        _announced.add(space.name)
        log.info("FID/KID/precision/recall in the feature space %s (trained here; comparable between runs of this "
                 "project, not with papers). Inception numbers: eval.inception_weights=PATH to "
                 "pt_inception-2015-12-05-6726825d.pth", space.name)
    return space
