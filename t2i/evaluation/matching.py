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
from torch import nn
from tqdm.auto import tqdm

from t2i.data.batches import spread_indices
from t2i.evaluation.domain import cache_key
from t2i.evaluation.settings import TOWERS, MatchingSettings
from t2i.images import centre_square
from t2i.io import atomic_save, load_cache
from t2i.safe_load import load_torch

log = logging.getLogger("t2i")



class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a (strided 1x1) shortcut, ReLU: ResNet's basic block."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class ColourHistogram(nn.Module):
    """A learned soft colour histogram: each pixel's RGB -> a softmax over `bins` learned
    colours (two 1x1 convolutions), averaged over the whole image and over its centre half.
    Captions name colours more than anything else, and a histogram carries over to classes
    never seen in training where a CNN trained on 82 classes' shapes may not."""

    def __init__(self, channels: int, bins: int = 32):
        super().__init__()
        self.pixel = nn.Sequential(nn.Conv2d(channels, 64, 1), nn.ReLU(True), nn.Conv2d(64, bins, 1))
        self.norm = nn.BatchNorm1d(2 * bins)
        self.num_features = 2 * bins

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        share = self.pixel(images).softmax(1)
        return self.norm(torch.cat([share.mean((2, 3)), centre_square(share, 0.5).mean((2, 3))], 1))


class ImageTower(nn.Module):
    """Images resized (area) to `image_size`, down to 4x4, global average pool (the FID
    features), linear. `residual`: a strided 3x3 stem then one residual block per halving
    (widths double up to 256); `plain`: the first judge's strided 4x4 convolutions.
    `colour`: the pooled features also carry a learned colour histogram (ColourHistogram)."""

    def __init__(self, channels: int, image_size: int, width: int = 32, dim: int = 256, tower: str = "plain",
                 colour: bool = False):
        super().__init__()
        if tower not in TOWERS:
            raise ValueError(f"eval.matching.tower must be one of {TOWERS}, got {tower!r}")
        self.image_size = image_size
        if tower == "residual":
            layers, c, s = [nn.Conv2d(channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width),
                            nn.ReLU(True)], width, image_size // 2
            while s > 4:
                w = min(2 * c, 256)
                layers.append(ResidualBlock(c, w, 2))
                c, s = w, s // 2
            layers.append(ResidualBlock(c, c, 1))
        else:
            layers, c, w, s = [], channels, width, image_size
            while s > 4:
                layers += [nn.Conv2d(c, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, True)]
                c, w, s = w, min(2 * w, 256), s // 2
            layers += [nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.colour = ColourHistogram(channels) if colour else None
        self.num_features = c + (self.colour.num_features if colour else 0)
        self.proj = nn.Linear(self.num_features, dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="area")
        pooled = self.body(images).mean((2, 3))
        return pooled if self.colour is None else torch.cat([pooled, self.colour(images)], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.features(images)), dim=-1)


class TextTower(nn.Module):
    """Token ids -> learned embeddings -> bidirectional GRU -> mean over words -> linear."""

    def __init__(self, vocab_size: int, word_dim: int = 128, dim: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.rnn = nn.GRU(word_dim, word_dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * word_dim, dim)

    def forward(self, token_ids: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        length = length.clamp(1, token_ids.shape[1]).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(token_ids), length, batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=token_ids.shape[1])
        mask = (torch.arange(token_ids.shape[1])[None, :] < length[:, None]).to(out.device, out.dtype)
        pooled = (out * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(self.proj(pooled), dim=-1)


class MatchingEvaluator(nn.Module):
    def __init__(self, channels: int, image_size: int, vocab_size: int, dim: int = 256, width: int = 32,
                 word_dim: int = 128, tower: str = "plain", colour: bool = False):  # image_size: the input side
        super().__init__()
        self.image = ImageTower(channels, image_size, width, dim, tower, colour)
        self.text = TextTower(vocab_size, word_dim, dim)
        self.log_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(1 / 0.07)))))
        self.num_features = self.image.num_features

    def loss(self, images: torch.Tensor, token_ids: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        img, txt = self.image(images), self.text(token_ids, length)
        logits = self.log_scale.clamp(max=4.6).exp() * img @ txt.T
        target = torch.arange(len(img), device=img.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.eval()
        return torch.cat([self.image(images[s:s + batch_size].float()) for s in range(0, len(images), batch_size)])

    @torch.no_grad()
    def embed_texts(self, token_ids: torch.Tensor, length: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        self.eval()
        return torch.cat([self.text(token_ids[s:s + batch_size].long(), length[s:s + batch_size].long())
                          for s in range(0, len(token_ids), batch_size)])

    @torch.no_grad()
    def image_features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.eval()
        return torch.cat([self.image.features(images[s:s + batch_size].float())
                          for s in range(0, len(images), batch_size)])


# ------------------------------------------------------------------ R-precision
def caption_codes(captions: list[str]) -> torch.Tensor:
    """One integer per distinct caption text (identical captions share it)."""
    index: dict[str, int] = {}
    return torch.tensor([index.setdefault(" ".join(c.lower().split()), len(index)) for c in captions])


def r_precision(image_emb: torch.Tensor, text_emb: torch.Tensor, captions: list[str],
                truth: torch.Tensor | None = None, distractors: int = 99, draws: int = 10,
                seed: int = 0) -> tuple[float, float]:
    """AttnGAN's R-precision: image i ranks caption `truth[i]` (default i) against
    `distractors` captions drawn from the other items whose text differs; the score is the
    fraction ranked first (ties lose). Mean and std over `draws` draws of the distractors."""
    n = len(captions)
    truth = torch.arange(n) if truth is None else truth
    codes = caption_codes(captions)
    true_codes = codes[truth]
    distinct = int(codes.unique().numel())
    if distinct < distractors + 1:
        raise ValueError(f"R-precision needs at least {distractors + 1} test items with different captions "
                         f"(1 true + {distractors} distractors), got {distinct} distinct captions in {n} items: "
                         "raise eval.num_samples, or use a test split with more images")
    sim = image_emb.float() @ text_emb.float().T
    true_sim = sim[torch.arange(n), truth]
    scores = []
    for d in range(draws):
        g = torch.Generator().manual_seed(seed * 7919 + d)
        wins = 0
        for s in range(0, n, 1024):  # rows in chunks: (n, n) noise for n = 30k would not fit
            rows = slice(s, min(n, s + 1024))
            noise = torch.rand(rows.stop - s, n, generator=g)
            noise[codes[None, :] == true_codes[rows, None]] = -1.0  # same text: never a distractor
            pick = noise.topk(distractors, dim=1).indices
            wins += int((sim[rows].gather(1, pick) < true_sim[rows, None]).all(1).sum())
        scores.append(wins / n)
    scores_t = torch.tensor(scores)
    return float(scores_t.mean()), float(scores_t.std()) if draws > 1 else 0.0


def class_oracle_r_precision(labels: torch.Tensor, captions: list[str], draws: int = 10) -> float:
    """R-precision of a judge that knows each image's and each caption's class and nothing
    more: same-class captions score alike, in a random order. A judge that tells classes
    apart but not the images within one is capped here; beating it takes instance detail."""
    onehot = F.one_hot(labels.long()).float()
    tiebreak = torch.rand(len(labels), 1, generator=torch.Generator().manual_seed(0)) * 1e-3
    images, texts = torch.cat([onehot, torch.ones(len(labels), 1)], 1), torch.cat([onehot, tiebreak], 1)
    return r_precision(images, texts, captions, draws=draws)[0]


# ------------------------------------------------------------------- training
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
    torch.manual_seed(int(cfg["seed"]))
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
    previous = torch.get_num_threads()
    if threads:  # 1 by default: 2 threads on 2 busy cores are many times slower than 1
        torch.set_num_threads(int(threads))
    try:
        seconds = _train(model, datamodule, cfg)
    finally:
        torch.set_num_threads(previous)
    held = datamodule.val_set if datamodule.val_set is not None and len(datamodule.val_set) else datamodule.test_set
    report = {"matching_train_seconds": round(seconds, 1), "matching_steps": int(cfg["steps"]),
              **heldout_r_precision(model, held)}
    log.info("matching evaluator trained in %.0f s: held-out real-image R-precision %s (shuffled %s)", seconds,
             report.get("matching_heldout_r_precision"), report.get("matching_heldout_r_precision_shuffled"))
    atomic_save({"state_dict": model.state_dict(), "settings": full, "report": report}, path)
    return model.eval(), report
