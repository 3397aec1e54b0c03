"""A text-image matching evaluator trained on a captioned dataset's train split: the
project's own stand-in for DAMSM (AttnGAN) or CLIP where no pretrained weights exist.

A dual encoder (a small image CNN, a bidirectional GRU over the data's token ids)
trained with the symmetric contrastive InfoNCE loss. Its uses:

- R-precision (AttnGAN's protocol, `r_precision`): a generated image ranks its own
  caption among 99 captions of other test images; the score is the fraction ranked first.
- its image tower's pooled features: the space of FID/KID/precision/recall for captioned
  photos offline (`domain:<dataset>-matching`).

The text tower reads token ids (not the run's word2vec vectors, which change with the run's
seed): one evaluator per dataset and settings, shared by every run, so scores compare.
Trained once (minutes on 2 CPU cores), cached under cache_dir/matching/ with its settings;
a cache from other settings is rebuilt, never reused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from t2i.atomic_files import atomic_save, load_cache
from t2i.data.batches import spread_indices
from t2i.evaluation.domain import cache_key
from t2i.evaluation.matching_nets import MatchingEvaluator
from t2i.evaluation.r_precision import caption_codes, class_oracle_r_precision, r_precision
from t2i.evaluation.settings import MatchingSettings
from t2i.safe_load import load_torch
from t2i.tensors import seeded_rng, torch_threads

log = logging.getLogger("t2i")
# what other modules import from here: the nets (matching_nets.py) and R-precision (r_precision.py)
__all__ = ["MatchingEvaluator", "caption_codes", "class_oracle_r_precision", "dataset_name", "heldout_r_precision",
           "matching_evaluator", "r_precision"]


def _settings(datamodule, cfg: dict) -> dict:
    train = datamodule.train_set
    vocab = datamodule.vocabulary.itos
    fingerprint = hashlib.sha1(json.dumps([len(train), len(train.captions), train.captions[:50], vocab],
                                          default=str).encode()).hexdigest()[:12]
    return dict(dataset=type(datamodule).__name__, data_key=cache_key(datamodule), data=fingerprint,
                channels=int(datamodule.channels), data_image_size=int(datamodule.image_size), vocab_size=len(vocab),
                **cfg)


def dataset_name(datamodule) -> str:
    return getattr(datamodule, "dataset_name", None) or type(datamodule).__name__.lower().replace("datamodule", "")


def _augment(images: torch.Tensor, g: torch.Generator, kind: str) -> torch.Tensor:
    """`crop_flip`: per image, a random crop of 70-100% of the side (anywhere inside),
    resized back, and a horizontal flip half the time (flower and bird captions name
    colours and parts, rarely left or right). `shift`: the first judge's one random shift
    of up to 1/16 of the side for the whole batch. Colours are never changed: they are
    what captions name."""
    if kind == "shift":
        pad = max(1, images.shape[-1] // 16)
        padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
        dx, dy = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=g))
        return padded[..., dy:dy + images.shape[-2], dx:dx + images.shape[-1]]
    n = len(images)
    scale = 0.7 + 0.3 * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (1 - scale)[:, None]
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale * flip, scale, shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def batch_rows(n: int, batch_size: int, g: torch.Generator, labels: torch.Tensor | None = None,
               same_class: int = 0) -> torch.Tensor:
    """Training images of one batch. `same_class=k` (with labels): batch_size / k classes, k
    images of each, so every image meets k - 1 captions of its own class among the
    negatives, the distractors R-precision is hardest on (a judge that only tells classes
    apart ranks its caption first about 1 time in 1 + the same-class distractors)."""
    if not same_class:
        return torch.randperm(n, generator=g)[:batch_size]
    classes = labels.unique()
    picked = classes[torch.randperm(len(classes), generator=g)[:max(1, batch_size // same_class)]]
    rows = []
    for c in picked.tolist():
        members = (labels == c).nonzero().flatten()
        rows.append(members[torch.randperm(len(members), generator=g)[:same_class]])
    return torch.cat(rows)


@torch.enable_grad()  # callers may be under no_grad (the in-training monitor, evaluation)
def _train(model: MatchingEvaluator, datamodule, cfg: dict) -> float:
    train = datamodule.train_set
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    steps, bs = int(cfg["steps"]), min(int(cfg["batch_size"]), len(train))
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(cfg["lr"]), total_steps=steps, pct_start=0.1)
    labels = getattr(train, "fields", {}).get("label")
    if int(cfg["same_class"]) and labels is None:
        raise ValueError(f"eval.matching.same_class={cfg['same_class']} needs class labels, which "
                         f"{type(datamodule).__name__} has not: set eval.matching.same_class=0")
    model.train()
    start, running = time.time(), None
    bar = tqdm(range(steps), desc=f"matching evaluator ({dataset_name(datamodule)}, train split)",
               leave=False, mininterval=2.0, disable=None)  # None: no bar when the output is a log file
    for step in bar:
        rows = batch_rows(len(train), bs, g, labels, int(cfg["same_class"]))
        draws = torch.randint(0, 2 ** 31 - 1, (len(rows),), generator=g)
        batch = train.__getitems__(list(zip(rows.tolist(), draws.tolist())))
        images = _augment(batch["image"], g, str(cfg["augment"])).to(device)
        loss = model.loss(images, batch["token_ids"].long().to(device), batch["length"].long().to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.set_postfix(loss=f"{running:.3f}", refresh=False)
        if (step + 1) % max(1, steps // 5) == 0:
            log.info("matching evaluator: step %d/%d, loss %.3f, %.0f s", step + 1, steps, running,
                     time.time() - start)
    bar.close()
    model.cpu()
    return time.time() - start


def heldout_r_precision(model: MatchingEvaluator, dataset, limit: int = 1000, draws: int = 5) -> dict:
    """Real-image R-precision of the evaluator on a held-out split (up to `limit` images
    spread over it, the first caption of each), always computed: with 99 distractors where
    those have 100 distinct captions, else with as many as there are (labelled: chance is 1
    in distractors + 1)."""
    rows = spread_indices(len(dataset), limit)
    n = len(rows)
    batch = dataset.__getitems__(rows)
    img = model.embed_images(batch["image"])
    txt = model.embed_texts(batch["token_ids"], batch["length"])
    distractors = min(99, int(caption_codes(batch["caption"]).unique().numel()) - 1)
    if distractors < 1:
        return {"matching_heldout_images": n, "matching_heldout_r_precision": None,
                "matching_heldout_note": "fewer than 2 distinct captions: no held-out score"}
    mean, _ = r_precision(img, txt, batch["caption"], distractors=distractors, draws=draws)
    floor, _ = r_precision(img, txt, batch["caption"], truth=torch.roll(torch.arange(n), 1),
                           distractors=distractors, draws=draws)
    return {"matching_heldout_images": n, "matching_heldout_distractors": distractors,
            "matching_heldout_r_precision": mean, "matching_heldout_r_precision_shuffled": floor}


def matching_evaluator(datamodule, cache_dir: str | Path, settings: MatchingSettings | dict | None = None
                       ) -> tuple[MatchingEvaluator, dict]:
    """The evaluator for a captioned data module: loaded from cache_dir when one was trained
    with the same data and settings, else trained on the train split and cached. Returns it
    with its report (held-out R-precision, training time, settings)."""
    if not hasattr(datamodule, "vocabulary"):
        raise ValueError(f"{type(datamodule).__name__} has no captions: the matching evaluator needs a "
                         "captioned data module (CaptionDataModule)")
    if not isinstance(settings, MatchingSettings):  # a misspelt key is an error, never the default
        settings = MatchingSettings.from_config(settings, "eval.matching")
    cfg, threads = settings.identity(), settings.cpu_threads
    datamodule.setup("fit")
    full = _settings(datamodule, cfg)
    key = hashlib.sha1(json.dumps(full, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / "matching" / f"{dataset_name(datamodule)}-{key}.pt"
    model = MatchingEvaluator(full["channels"], int(cfg["image_size"]), full["vocab_size"], int(cfg["dim"]),
                              int(cfg["width"]), int(cfg["word_dim"]), str(cfg["tower"]), bool(cfg["colour"]))
    state = load_cache(path, load_torch)  # no code runs: a cache with anything else is rebuilt
    if state is not None:
        if state.get("settings") == full:
            model.load_state_dict(state["state_dict"])
            return model.eval(), state["report"]
        log.warning("matching evaluator cache %s was built with other settings: rebuilding it", path)
    log.info("training the text-image matching evaluator on %s's %d training images (%d steps, cached in %s)",
             type(datamodule).__name__, len(datamodule.train_set), cfg["steps"], path.parent)
    # 1 thread by default: 2 threads on 2 busy cores are many times slower than 1. Seeded
    # inside, the caller's random state untouched (cached or trained, a run goes on alike)
    with torch_threads(threads), seeded_rng(int(cfg["seed"])):
        seconds = _train(model, datamodule, cfg)
    held = datamodule.val_set if datamodule.val_set is not None and len(datamodule.val_set) else datamodule.test_set
    report = {"matching_train_seconds": round(seconds, 1), "matching_steps": int(cfg["steps"]),
              **heldout_r_precision(model, held)}
    log.info("matching evaluator trained in %.0f s: held-out real-image R-precision %s (shuffled %s)", seconds,
             report.get("matching_heldout_r_precision"), report.get("matching_heldout_r_precision_shuffled"))
    atomic_save({"state_dict": model.state_dict(), "settings": full, "report": report}, path)
    return model.eval(), report
