"""What the text-to-image GANs share, on caption batches (`word_vectors` (B, L, D), `length` (B,)):
evaluation and drawing from typed captions (`TextToImageGAN`), sentence-conditioned drawing
(`SentenceConditioned`) and the wrong-text pairs of matching-aware discriminators. The models,
one per file: `gan_cls.py` (Reed et al. 2016), `df_gan.py` (Tao et al. 2022),
`cond_dcgan_lstm.py` (the source report's design). All go through `GANTask`'s shared step
(k D steps, then a G step, non-finite guard).
"""
from __future__ import annotations

import importlib
import warnings

import torch

from t2i.evaluation.image_evaluation import evaluate_generator
from t2i.image_generator import ImageGenerator
from t2i.tasks.cpu_threads import CPUThreads
from t2i.tasks.ema import GeneratorEMA
from t2i.tasks.gan import GANTask
from t2i.tensors import evaluating


def same_caption(batch: dict) -> torch.Tensor:
    """(B, B) bool: True where items i and j carry the same caption text."""
    if "token_ids" in batch:
        ids = batch["token_ids"]
        return (ids[:, None, :] == ids[None, :, :]).all(-1)
    device = batch["image"].device
    if "caption" in batch:
        index: dict[str, int] = {}
        codes = torch.tensor([index.setdefault(c, len(index)) for c in batch["caption"]], device=device)
        return codes[:, None] == codes[None, :]
    return torch.eye(batch["image"].shape[0], dtype=torch.bool, device=device)


def hardest_wrong(sentence: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """For every item, the index of the nearest *different* caption in the batch
    (nearest in `sentence`, D's projected text space); items whose batch holds no
    different caption get themselves (and are masked out by the caller)."""
    with torch.no_grad():
        dist = torch.cdist(sentence.float(), sentence.float())
        dist = dist.masked_fill(same, float("inf"))
        nearest = dist.argmin(1)
        has_other = torch.isfinite(dist.gather(1, nearest[:, None])).squeeze(1)
    return torch.where(has_other, nearest, torch.arange(len(nearest), device=nearest.device))


def differs_from_rolled(batch: dict, same: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) True where item i's caption differs from item i-1's, the one it is paired
    with as "wrong text". Templated captions repeat (1 in 32 for shapes): a real image
    with an identical caption is no mismatch, and must not be called one. `same`: the
    batch's `same_caption` matrix, when the caller has it already."""
    same = same_caption(batch) if same is None else same
    i = torch.arange(len(same), device=same.device)
    return ~same[i, i - 1]  # i - 1 = -1 for item 0: the last item, as roll(1, 0) pairs them


def wrong_text_pairs(batch: dict, hard_space: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The mismatched (image, caption) pairs a matching-aware D learns to reject, as
    (caption index per item, valid per item): each image with its neighbour's caption (the
    paper's random wrong text) and, given `hard_space` (hard negatives: the sentence
    vectors to measure nearness in), with the nearest *different* caption too. Pairs
    whose "wrong" caption is the same text are not valid."""
    same = same_caption(batch)
    i = torch.arange(len(same), device=same.device)
    pairs = [(i - 1, differs_from_rolled(batch, same))]
    if hard_space is not None:
        nearest = hardest_wrong(hard_space, same)
        pairs.append((nearest, ~same[i, nearest]))
    return pairs


class TextToImageGAN(ImageGenerator, CPUThreads, GeneratorEMA, GANTask):
    """What every caption-conditioned GAN shares: evaluation (FID/KID, alignment,
    captions.png), generation from typed captions, and an optional exponential moving
    average (EMA) of the generator's weights (`t2i.tasks.ema`): training always uses the
    live generator; sampling (eval mode: evaluate.py, generate.py, sample grids) uses
    the average."""

    uses_text = True

    def __init__(self, cpu_threads: int | str | None = "auto", **gan_kw):
        super().__init__(**gan_kw)
        self.init_cpu_threads(cpu_threads)

    def evaluate(self, datamodule, settings, out_dir) -> dict:
        with self.cpu_threads_applied():
            return evaluate_generator(self, datamodule, settings, out_dir)

    def images_for_text(self, encoded: dict, n: int, seed: int = 0) -> torch.Tensor:
        """`n` images per encoded caption (datamodule.encode's dict), in eval mode:
        (captions, n, C, S, S) in [-1, 1] on CPU."""
        count = encoded["length"].shape[0]
        batch = {"word_vectors": encoded["word_vectors"].float().repeat_interleave(n, 0).to(self.device),
                 "length": encoded["length"].long().repeat_interleave(n, 0).to(self.device)}
        with evaluating(self):
            images = self.generate(batch, self.draw_noise(count * n, seed)).float().cpu()
        return images.view(count, n, *images.shape[1:])


class SentenceConditioned:
    """Drawing for generators with a sentence encoder (`generator.text.embed`) and a
    `sentence=` input: GAN-CLS and DF-GAN. `embed_text` / `generate_from_embedding` are
    what text_interpolation.png walks between."""

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        return self.drawing_generator()(z, batch["word_vectors"], batch["length"])

    def embed_text(self, word_vectors: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The drawing generator's sentence embedding (B, E), before its projection."""
        return self.drawing_generator().text.embed(word_vectors, length)

    def generate_from_embedding(self, z: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """Images from `embed_text`'s vectors (or mixtures of them: text interpolation)."""
        return self.drawing_generator()(z, sentence=sentence)




MOVED = {"GANCLS": "t2i.tasks.gan_cls", "CondDCGANLSTM": "t2i.tasks.cond_dcgan_lstm",
         "sample_words": "t2i.tasks.cond_dcgan_lstm"}


def __getattr__(name: str):
    """The models' old home (`t2i.tasks.text_to_image.GANCLS` in configs and code written before
    they moved to one file each): still found, with a deprecation warning, for one release."""
    if name not in MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"t2i.tasks.text_to_image.{name} moved to {MOVED[name]}.{name}; the old path goes in the next "
                  f"release", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(MOVED[name]), name)  # imported on use: the module imports this one
