"""Domain FID, precision and recall (k-NN, k=3; Kynkaanniemi et al. 2019 via torch-fidelity)
of trained shapes checkpoints, in the domain classifier's feature space.

    python scripts/default_run_quality.py RUN_DIR [RUN_DIR ...]   # reads RUN_DIR/checkpoints/last.ckpt
    python scripts/default_run_quality.py --calibrate   # real images, untouched and slightly degraded

One line per run and a mean; used for docs/shapes_dcgan.md."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch_fidelity.metric_prc import calculate_precision_recall_full
from torchmetrics.image.fid import FrechetInceptionDistance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from t2i.evaluation import eval_batches  # noqa: E402
from t2i.metrics.domain import DomainFeatures, train_domain_classifier  # noqa: E402
from t2i.run import load_checkpoint  # noqa: E402


def features(extractor: DomainFeatures, images: torch.Tensor) -> torch.Tensor:
    """images in [-1, 1] -> domain features, as evaluation computes them."""
    return torch.cat([extractor((b.float().clamp(-1, 1) + 1) / 2) for b in images.split(250)])


def quality(run_dir: Path, n: int, cache_dir: str) -> dict:
    model, datamodule, cfg = load_checkpoint(str(run_dir / "checkpoints" / "last.ckpt"))
    real = torch.cat([b["image"] for b in eval_batches(datamodule, n, 100)])
    fake = model.sample(eval_batches(datamodule, n, 100))
    extractor = DomainFeatures(train_domain_classifier(datamodule, cache_dir)[0])
    fid = FrechetInceptionDistance(feature=extractor, normalize=True, sync_on_compute=False)
    fid.update((real.float() + 1) / 2, real=True)
    fid.update((fake.float().clamp(-1, 1) + 1) / 2, real=False)
    precision, recall = calculate_precision_recall_full(features(extractor, fake).float(),
                                                        features(extractor, real).float(), neighborhood=3)
    return dict(run=str(run_dir), seed=cfg.get("seed"), fid=float(fid.compute()), precision=precision, recall=recall)


def calibrate(n: int, cache_dir: str) -> list[dict]:
    """How strict the feature space is: real validation images, untouched and slightly
    degraded, scored against the real test images as a generator's samples would be."""
    import torchvision.transforms.functional as TF

    from t2i.data.synthetic.shapes import ShapesDataModule

    data = ShapesDataModule(image_size=32, seed=0)
    data.setup()
    extractor = DomainFeatures(train_domain_classifier(data, cache_dir)[0])
    real = torch.stack([data.test_set[i]["image"] for i in range(n)]).float()
    val = torch.stack([data.val_set[i]["image"] for i in range(n)]).float()
    real_features = features(extractor, real).float()
    variants = {"real (val vs test)": val, "gaussian blur sigma 0.5 px": TF.gaussian_blur(val, 3, 0.5),
                "dimmed to 80%": (val + 1) * 0.8 - 1,
                "noise sigma 0.05": val + 0.05 * torch.randn(val.shape, generator=torch.Generator().manual_seed(0)),
                "shifted 1 px": torch.roll(val, 1, 3)}
    rows = []
    for name, images in variants.items():
        precision, recall = calculate_precision_recall_full(features(extractor, images).float(), real_features,
                                                            neighborhood=3)
        rows.append(dict(images=name, precision=round(precision, 3), recall=round(recall, 3)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--calibrate", action="store_true", help="score degraded real images instead of runs")
    parser.add_argument("--n", type=int, default=1000, help="generated and real test images per run")
    parser.add_argument("--cache-dir", default=".cache")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.calibrate:
        for row in calibrate(args.n, args.cache_dir):
            print(json.dumps(row))
        return
    if not args.runs:
        parser.error("give one or more RUN_DIRs, or --calibrate")
    rows = [quality(run, args.n, args.cache_dir) for run in args.runs]
    for row in rows:
        print(json.dumps(row))
    if len(rows) > 1:
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("fid", "precision", "recall")}
        print(json.dumps({"mean": mean}))


if __name__ == "__main__":
    main()
