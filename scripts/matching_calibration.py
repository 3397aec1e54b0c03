"""Calibrate the text-image matching evaluator on a captioned dataset: train it (or load it
from the cache) with eval.matching settings, then print its R-precision on the test split's
real images (the ceiling every generator is capped by), against shuffled captions (the
floor), on mean-colour images and on noise, the class-level bound (`class_oracle_r_precision`) where
the data has class labels, plus its held-out val score and the training
time per step (wall and CPU seconds: on a shared machine the CPU seconds of a 1-thread run
are what the step costs on an idle core).

    python scripts/matching_calibration.py experiment=flowers_dfgan data.root=../shared/data/flowers102 \\
        eval.matching.steps=500 [eval.matching.KEY=VALUE ...] [--n 1000] [--cache-dir DIR]

Used for docs/evaluation.md (the calibration table)."""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

import hydra
import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from t2i.data.batches import eval_batches  # noqa: E402
from t2i.evaluation.alignment import derangement  # noqa: E402
from t2i.evaluation.matching import class_oracle_r_precision, matching_evaluator, r_precision  # noqa: E402
from t2i.evaluation.settings import EvalSettings, MatchingSettings  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def calibrate(datamodule, settings: MatchingSettings, cache_dir: str, n: int, draws: int = 10) -> dict:
    datamodule.setup("fit")
    wall, cpu = time.time(), cpu_seconds()
    evaluator, report = matching_evaluator(datamodule, cache_dir, settings)
    wall, cpu = time.time() - wall, cpu_seconds() - cpu
    batches = list(eval_batches(datamodule, n, 250, "test"))
    captions = [c for b in batches for c in b["caption"]]
    real = torch.cat([b["image"] for b in batches])
    text = evaluator.embed_texts(torch.cat([b["token_ids"] for b in batches]),
                                 torch.cat([b["length"] for b in batches]))
    g = torch.Generator().manual_seed(0)
    images = {"real": real,
              "mean_colour": real.mean((2, 3), keepdim=True).expand_as(real).contiguous(),
              "noise": torch.rand(real.shape, generator=g) * 2 - 1}
    out = {f"r_precision_{k}": r_precision(evaluator.embed_images(v), text, captions, draws=draws)[0]
           for k, v in images.items()}
    out["r_precision_shuffled"] = r_precision(evaluator.embed_images(real), text, captions,
                                              truth=derangement(len(captions), 0), draws=draws)[0]
    if "label" in batches[0]:
        labels = torch.cat([b["label"] for b in batches])
        out["r_precision_class_oracle"] = class_oracle_r_precision(labels, captions, draws)
    steps = int(report["matching_steps"])
    out.update(report, test_items=len(captions), wall_s=round(wall, 1), cpu_s=round(cpu, 1),
               wall_s_per_step=round(wall / steps, 3), cpu_s_per_step=round(cpu / steps, 3))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml")
    parser.add_argument("--n", type=int, default=1000, help="test items (first caption of each image)")
    parser.add_argument("--cache-dir", default=None, help="default: the config's eval.cache_dir")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    datamodule = hydra.utils.instantiate(cfg.data)
    settings = EvalSettings.from_config(cfg.eval)
    result = calibrate(datamodule, settings.matching, args.cache_dir or settings.cache, args.n)
    print(json.dumps({"settings": asdict(settings.matching), **result}, indent=1, default=str))


if __name__ == "__main__":
    main()
