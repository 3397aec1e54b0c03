"""R-precision (AttnGAN's protocol): an image ranks its own caption among distractor
captions of other items; the score is the fraction ranked first."""
from __future__ import annotations

import torch
import torch.nn.functional as F


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
