"""Domain FID, precision and recall (k-NN, k=3; Kynkaanniemi et al. 2019) of trained shapes
checkpoints, in the domain classifier's feature space, through the code path metrics.json
uses (t2i.evaluation.scores: torch-fidelity's FID and precision/recall).

    python scripts/default_run_quality.py RUN_DIR [RUN_DIR ...]   # reads RUN_DIR/checkpoints/last.ckpt
    python scripts/default_run_quality.py --calibrate   # real images, untouched and slightly degraded

One line per run and a mean; used for docs/shapes_dcgan.md."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torchvision.transforms.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from t2i.data.batches import eval_batches  # noqa: E402
from t2i.data.synthetic.shapes import ShapesDataModule  # noqa: E402
from t2i.evaluation.features import feature_space  # noqa: E402
from t2i.evaluation.scores import feature_metrics, image_quality  # noqa: E402
from t2i.evaluation.settings import EvalSettings  # noqa: E402
from t2i.run import load_checkpoint  # noqa: E402

DOMAIN = {"feature_extractor": "domain", "batch_size": 250}


def quality(run_dir: Path, n: int, cache_dir: str) -> dict:
    """The run's test-split scores as evaluate.py computes them, in the domain space."""
    model, datamodule, cfg = load_checkpoint(str(run_dir / "checkpoints" / "last.ckpt"))
    fake = model.sample(eval_batches(datamodule, n, 100))
    settings = EvalSettings.from_config(cfg.eval).with_(**DOMAIN)
    m = image_quality(fake, datamodule, settings, cache_dir, generated_from="test", reference="test")
    return dict(run=str(run_dir), seed=cfg.get("seed"), fid=m["fid"], precision=m["precision"], recall=m["recall"])


def calibrate(n: int, cache_dir: str) -> list[dict]:
    """How strict the feature space is: real validation images, untouched and slightly
    degraded, scored against the real test images as a generator's samples would be."""
    data = ShapesDataModule(image_size=32, seed=0)
    data.setup()
    space = feature_space(EvalSettings.from_config(DOMAIN), data, cache_dir)
    real = torch.stack([data.test_set[i]["image"] for i in range(n)]).float()
    val = torch.stack([data.val_set[i]["image"] for i in range(n)]).float()
    real_features = space.extract(real)
    variants = {"real (val vs test)": val, "gaussian blur sigma 0.5 px": TF.gaussian_blur(val, 3, 0.5),
                "dimmed to 80%": (val + 1) * 0.8 - 1,
                "noise sigma 0.05": val + 0.05 * torch.randn(val.shape, generator=torch.Generator().manual_seed(0)),
                "shifted 1 px": torch.roll(val, 1, 3)}
    rows = []
    for name, images in variants.items():
        m = feature_metrics(space.extract(images), real_features)
        rows.append(dict(images=name, precision=round(m["precision"], 3), recall=round(m["recall"], 3)))
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
