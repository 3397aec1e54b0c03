"""Tune and calibrate colour_accuracy's HSV rule (t2i/evaluation/colour.py) on real photos:
a grid over the rule's thresholds scored on the *train* split's real images (every caption
naming one colour), then the chosen rule's real-image ceiling and shuffled floor on the
test split as evaluation computes them (first caption of N test images spread over the split).

    python scripts/colour_calibration.py experiment=flowers_dfgan data.root=../shared/data/flowers102 [--grid]

Without --grid it only reports the module's current rule. Used for docs/evaluation.md."""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from pathlib import Path

import hydra
import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from t2i.data.batches import eval_batches  # noqa: E402
from t2i.evaluation import colour  # noqa: E402
from t2i.evaluation.alignment import derangement  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"
GRID = dict(CENTRE=(0.3, 0.5, 0.7), PINK_SAT=(0.4, 0.55, 0.7), GREEN_WEIGHT=(0.25, 0.5), PURPLE_END=(290, 310, 325))


def train_pairs(dataset, n: int) -> tuple[torch.Tensor, list[int], list[str]]:
    """Up to n train images, and (image row, caption) for each caption naming one colour."""
    rows, captions = [], []
    for i in range(min(n, len(dataset))):
        first, count = int(dataset.first[i]), int(dataset.count[i])
        for c in range(first, first + count):
            if colour.caption_colour(dataset.captions[c]):
                rows.append(i)
                captions.append(dataset.captions[c])
    unique = sorted(set(rows))
    where = {r: k for k, r in enumerate(unique)}
    return dataset.__getitems__(unique)["image"], [where[r] for r in rows], captions


def score(images, rows, captions) -> float:
    seen = colour.dominant_colours(images)
    return colour.accuracy([seen[r] for r in rows], captions)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--grid", action="store_true", help="search the thresholds on the train split")
    parser.add_argument("--n", type=int, default=1000, help="test items")
    parser.add_argument("--train-images", type=int, default=3000)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    if args.grid:
        images, rows, captions = train_pairs(dm.train_set, args.train_images)
        best = None
        for values in itertools.product(*GRID.values()):
            for k, v in zip(GRID, values):
                setattr(colour, k, v)
            acc = score(images, rows, captions)
            if best is None or acc > best[0]:
                best = (acc, dict(zip(GRID, values)))
        print(json.dumps({"train_pairs": len(captions), "train_accuracy": best[0], "best": best[1]}))
        for k, v in best[1].items():
            setattr(colour, k, v)
    batches = list(eval_batches(dm, args.n, 250, "test"))
    captions = [c for b in batches for c in b["caption"]]
    real = torch.cat([b["image"] for b in batches])
    seen = colour.dominant_colours(real)
    ceiling, covered = colour.accuracy(seen, captions)
    floor, _ = colour.accuracy(seen, [captions[int(j)] for j in derangement(len(captions), 0)])
    named = Counter(colour.caption_colour(c) for c in captions if colour.caption_colour(c))
    hits = Counter(colour.caption_colour(c) for c, s in zip(captions, seen) if colour.caption_colour(c) == s)
    print(json.dumps({"test_items": len(captions), "colour_captions": covered, "colour_accuracy_real": ceiling,
                      "colour_accuracy_real_shuffled": floor,
                      "per_colour": {k: f"{hits[k]}/{v}" for k, v in named.most_common()},
                      "rule": {k: getattr(colour, k) for k in GRID}}, indent=1))


if __name__ == "__main__":
    main()
