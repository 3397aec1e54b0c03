"""Evaluation routines shared by tasks: each task's `evaluate` calls one of these."""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

from t2i.callbacks.samples import grid
from t2i.metrics.image_quality import image_quality


def eval_batches(datamodule, n: int, batch_size: int, split: str = "test"):
    """Up to n items of a split as batches (real images and their conditioning)."""
    datamodule.setup("test" if split == "test" else "fit")
    dataset = {"train": datamodule.train_set, "val": datamodule.val_set, "test": datamodule.test_set}[split]
    collate = getattr(datamodule, "collate_fn", None) or torch.utils.data.default_collate
    n = min(n, len(dataset))
    for s in range(0, n, batch_size):
        yield collate([dataset[i] for i in range(s, min(n, s + batch_size))])


def evaluate_unconditional(model, datamodule, eval_cfg, out_dir: Path) -> dict:
    """Generate eval.num_samples images; FID/KID(/IS) against as many test images."""
    n, bs = int(eval_cfg.num_samples), int(eval_cfg.batch_size)
    real = torch.cat([b["image"] for b in eval_batches(datamodule, n, bs)])
    fake = model.sample(eval_batches(datamodule, n, bs))
    save_image(grid(fake[:64]), Path(out_dir) / "samples.png")
    cache_dir = eval_cfg.get("cache_dir") or ".cache"
    return image_quality(real, fake, eval_cfg, datamodule, cache_dir)


# ------------------------------------------------------------------ text-to-image
def image_quality_or_null(real: torch.Tensor, fake: torch.Tensor, eval_cfg, datamodule, cache_dir) -> dict:
    """image_quality, except where no feature space exists at all (no Inception weights
    and no domain classifier, e.g. Flickr offline): then fid/kid/is are null with a note,
    so the rest of the evaluation (captions.png, ...) still gets written."""
    try:
        return image_quality(real, fake, eval_cfg, datamodule, cache_dir)
    except RuntimeError as err:
        if getattr(datamodule, "domain_name", None) is not None:
            raise
        import logging
        logging.getLogger("t2i").warning("FID/KID/IS not computed: %s", err)
        return dict(fid=None, kid_mean=None, kid_std=None, is_mean=None, is_std=None,
                    num_samples=min(len(real), len(fake)), fid_feature_extractor=None, fid_note=str(err))


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


def captions_picture(captions: list[str], real: torch.Tensor, generated: torch.Tensor, path: Path,
                     cell: int = 64, text_width: int = 250) -> None:
    """One row per caption: its text, its real image, then its generated images
    (`generated` (k, m, C, S, S)); all images in [-1, 1]."""
    import textwrap

    from PIL import Image, ImageDraw

    from t2i.data.base import to_uint8

    k, m = generated.shape[:2]
    cell = max(cell, real.shape[-1])
    pad, header = 4, 18

    def tile(image: torch.Tensor) -> Image.Image:
        array = to_uint8(image).expand(3, -1, -1).permute(1, 2, 0).numpy()
        return Image.fromarray(array).resize((cell, cell), Image.NEAREST)

    sheet = Image.new("RGB", (text_width + (1 + m) * (cell + pad) + pad, header + k * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 2), "held-out caption", fill="black")
    draw.text((text_width + pad, 2), "real", fill="black")
    draw.text((text_width + 2 * pad + cell, 2), f"generated ({m} noise draws)", fill="black")
    for row, caption in enumerate(captions):
        top = header + row * (cell + pad)
        draw.multiline_text((pad, top + 2), "\n".join(textwrap.wrap(caption, 40)[:5]), fill="black")
        sheet.paste(tile(real[row]), (text_width + pad, top))
        for j in range(m):
            sheet.paste(tile(generated[row, j]), (text_width + pad + (1 + j) * (cell + pad), top))
    sheet.save(path)


def evaluate_text_to_image(model, datamodule, eval_cfg, out_dir: Path) -> dict:
    """Images from eval.num_samples held-out (test) captions: FID/KID against the
    captions' real images, text-image alignment where the data has attribute targets,
    samples.png and captions.png (eval.num_captions rows x eval.images_per_caption)."""
    from t2i.metrics.alignment import alignment_classifier, alignment_metrics

    out_dir = Path(out_dir)
    n, bs = int(eval_cfg.num_samples), int(eval_cfg.batch_size)
    cache_dir = eval_cfg.get("cache_dir") or ".cache"
    batches = list(eval_batches(datamodule, n, bs))
    real = torch.cat([b["image"] for b in batches])
    fake = model.sample(batches)
    save_image(grid(fake[:64]), out_dir / "samples.png")
    metrics = image_quality_or_null(real, fake, eval_cfg, datamodule, cache_dir)
    if getattr(datamodule, "target_names", None) and all("targets" in b for b in batches):
        targets = torch.cat([b["targets"] for b in batches])
        classifier = alignment_classifier(datamodule, cache_dir)
        metrics.update(alignment_metrics(classifier, fake, real, targets, seed=int(eval_cfg.get("seed", 0))))

    k, m = int(eval_cfg.get("num_captions", 8)), int(eval_cfg.get("images_per_caption", 6))
    items = distinct_caption_items(datamodule.test_set, k)
    collate = getattr(datamodule, "collate_fn", None) or torch.utils.data.default_collate
    generated = model.images_for_text(collate(items), m, seed=int(eval_cfg.get("seed", 0)))
    captions_picture([it["caption"] for it in items], torch.stack([it["image"] for it in items]), generated,
                     out_dir / "captions.png")
    return metrics
