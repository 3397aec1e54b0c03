"""The pictures an evaluation writes: samples.png, captions.png (text-to-image; rows
grouped by the colour word each caption names),
interpolation.png (a walk in z between fixed pairs) and text_interpolation.png (GAN-INT's
picture: z fixed, a walk between two captions' embeddings)."""
from __future__ import annotations

import logging
import textwrap
from functools import lru_cache
from pathlib import Path

import matplotlib
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import save_image

from t2i.atomic_files import atomic_path
from t2i.data.batches import spread_indices
from t2i.evaluation.colour import caption_colour
from t2i.image_generator import draw_noise
from t2i.images import grid, to_pil
from t2i.tensors import evaluating, to_device

log = logging.getLogger("t2i")


@lru_cache(maxsize=4)
def label_font(size: int = 11) -> ImageFont.ImageFont:
    """The pictures' text font: DejaVu Sans, which matplotlib (a dependency) ships. Pillow's
    own default (Aileron) sets spaces so narrow that captions read "filledsquare"."""
    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


def distinct_caption_items(dataset, k: int, scan: int = 2000) -> list[dict]:
    """The first k items of a split with pairwise different captions."""
    items, seen = [], set()
    for i in range(min(len(dataset), scan)):
        item = dataset[i]
        if item["caption"] not in seen:
            seen.add(item["caption"])
            items.append(item)
        if len(items) == k:
            break
    return items


def colour_grouped_items(dataset, k: int, per_colour: int = 2, scan: int = 2000) -> list[dict]:
    """k items with different captions for captions.png, grouped by the one colour word
    each caption names (colour.COLOURS; the commonest colours first, per_colour rows each), so
    a reader sees at a glance whether "yellow" captions give yellow images; topped up with
    other captions when too few name one colour. The scan spreads over the whole split (at
    most `scan` items, `spread_indices`): photo splits are sorted by class, and the first items of one class
    would show one flower in two colours rather than many flowers in many."""
    by_colour: dict[str, list[dict]] = {}
    counts: dict[str, int] = {}
    seen: set[str] = set()
    for i in spread_indices(len(dataset), scan):
        item = dataset[i]
        named = caption_colour(item["caption"])
        if not named or item["caption"] in seen:
            continue
        seen.add(item["caption"])
        counts[named] = counts.get(named, 0) + 1
        if len(by_colour.setdefault(named, [])) < per_colour:
            by_colour[named].append(item)
    order = sorted(by_colour, key=lambda c: (-len(by_colour[c]), -counts[c]))
    items = [it for c in order for it in by_colour[c]][:k]
    if len(items) < k:
        chosen = {it["caption"] for it in items}
        others = [it for it in distinct_caption_items(dataset, 2 * k, scan) if it["caption"] not in chosen]
        items += others[:k - len(items)]
    return items


def _tile(image: torch.Tensor, cell: int) -> Image.Image:
    return to_pil(image.expand(3, -1, -1)).resize((cell, cell), Image.NEAREST)


def captions_picture(captions: list[str], real: torch.Tensor, generated: torch.Tensor, path: Path,
                     cell: int = 64, text_width: int = 250) -> None:
    """One row per caption: its text, its real image, then its generated images
    (`generated` (k, m, C, S, S)); all images in [-1, 1]."""
    k, m = generated.shape[:2]
    cell = max(cell, real.shape[-1])
    pad, header = 4, 18
    sheet = Image.new("RGB", (text_width + (1 + m) * (cell + pad) + pad, header + k * (cell + pad) + pad), "white")
    draw, font = ImageDraw.Draw(sheet), label_font()
    draw.text((pad, 2), "held-out caption", fill="black", font=font)
    draw.text((text_width + pad, 2), "real", fill="black", font=font)
    draw.text((text_width + 2 * pad + cell, 2), f"generated ({m} noise draws)", fill="black", font=font)
    for row, caption in enumerate(captions):
        top = header + row * (cell + pad)
        draw.multiline_text((pad, top + 2), "\n".join(textwrap.wrap(caption, 40)[:5]), fill="black", font=font)
        sheet.paste(_tile(real[row], cell), (text_width + pad, top))
        for j in range(m):
            sheet.paste(_tile(generated[row, j], cell), (text_width + pad + (1 + j) * (cell + pad), top))
    with atomic_path(path) as tmp:
        sheet.save(tmp)


def labelled_rows(rows: torch.Tensor, labels: list[str], path: Path, cell: int = 48, text_width: int = 0,
                  title: str = "") -> None:
    """rows (R, K, C, S, S) in [-1, 1] as a sheet, with an optional text column per row."""
    r, k = rows.shape[:2]
    cell = max(cell, rows.shape[-1])
    pad, header = 3, 16 if title else 0
    sheet = Image.new("RGB", (text_width + k * (cell + pad) + pad, header + r * (cell + pad) + pad), "white")
    draw, font = ImageDraw.Draw(sheet), label_font()
    if title:
        draw.text((pad, 2), title, fill="black", font=font)
    for i in range(r):
        top = header + pad + i * (cell + pad)
        if text_width and labels:
            draw.multiline_text((pad, top), "\n".join(textwrap.wrap(labels[i], max(10, text_width // 6))[:4]),
                                fill="black", font=font)
        for j in range(k):
            sheet.paste(_tile(rows[i, j], cell), (text_width + pad + j * (cell + pad), top))
    with atomic_path(path) as tmp:
        sheet.save(tmp)


def _repeat(batch: dict, n: int) -> dict:
    return {k: v.repeat_interleave(n, 0) if torch.is_tensor(v) else v for k, v in batch.items()}


def latent_interpolation(model, batch: dict, path: Path, steps: int = 8, seed: int = 0) -> None:
    """Row i: z walks linearly from z_a(i) to z_b(i) (fixed by the seed); a conditional
    model keeps row i's conditioning (its caption) all along."""
    rows = batch["image"].shape[0]
    g = torch.Generator().manual_seed(seed)
    z_a, z_b = (draw_noise(rows, model.nz, model.noise_kind, g) for _ in range(2))
    alphas = torch.linspace(0, 1, steps)
    z = (z_a[:, None] * (1 - alphas[None, :, None]) + z_b[:, None] * alphas[None, :, None]).flatten(0, 1)
    with evaluating(model):
        images = model.generate(to_device(_repeat(batch, steps), model.device), z.to(model.device)).float().cpu()
    labels = list(batch.get("caption", []))
    labelled_rows(images.view(rows, steps, *images.shape[1:]), labels, path, text_width=200 if labels else 0,
                  title="z_a -> z_b (linear), conditioning fixed per row")


def text_interpolation(model, first: dict, second: dict, path: Path, steps: int = 8, seed: int = 0) -> None:
    """Row i: z fixed, the text walks from caption a(i) to caption b(i). Models with a
    sentence embedding (`embed_text` / `generate_from_embedding`) walk in it; others walk
    in word-vector space (both captions padded to the longer length)."""
    rows = first["length"].shape[0]
    alphas = torch.linspace(0, 1, steps).to(model.device)
    z = model.draw_noise(rows, seed).repeat_interleave(steps, 0)
    a, b = to_device(first, model.device), to_device(second, model.device)
    with evaluating(model):
        if hasattr(model, "embed_text") and hasattr(model, "generate_from_embedding"):
            ea, eb = model.embed_text(a["word_vectors"], a["length"]), model.embed_text(b["word_vectors"], b["length"])
            mix = ea[:, None] * (1 - alphas[None, :, None]) + eb[:, None] * alphas[None, :, None]
            images = model.generate_from_embedding(z, mix.flatten(0, 1))
        else:
            wa, wb = a["word_vectors"], b["word_vectors"]
            mix = (wa[:, None] * (1 - alphas[None, :, None, None]) + wb[:, None] * alphas[None, :, None, None])
            length = torch.maximum(a["length"], b["length"]).repeat_interleave(steps, 0)
            images = model.generate({"word_vectors": mix.flatten(0, 1), "length": length}, z)
    images = images.float().cpu()
    labels = [f"{ca}  ->  {cb}" for ca, cb in zip(first["caption"], second["caption"])]
    labelled_rows(images.view(rows, steps, *images.shape[1:]), labels, path, text_width=260,
                  title="caption a -> caption b in the text embedding, z fixed per row")


def save_grid(images: torch.Tensor, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_image(grid(images[:64]), tmp)


def log_pictures(paths: list[Path]) -> None:
    """Send the evaluation's pictures to the active W&B run, if there is one."""
    try:
        import wandb  # optional dependency (logger=wandb)
    except ImportError:
        return
    if wandb.run is None:
        return
    wandb.log({f"eval/{p.stem}": wandb.Image(str(p)) for p in paths if p.exists()})
