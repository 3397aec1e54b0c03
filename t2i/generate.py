"""generate.py: images for typed captions from a checkpoint or an exported generator."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torchvision.utils import save_image

from t2i.atomic_files import atomic_path
from t2i.errors import CheckpointError, ConfigError
from t2i.image_generator import is_text_to_image
from t2i.images import grid, to_unit
from t2i.run import load_checkpoint, trusted
from t2i.run_folder import RunFolder, write_hydra_record
from t2i.value_checks import check_config

log = logging.getLogger("t2i")


def slug(text: str, max_len: int = 60) -> str:
    """A file-name-safe form of a caption."""
    words = "".join(c if c.isalnum() else "_" for c in text.lower()).split("_")
    return "_".join(w for w in words if w)[:max_len] or "caption"


def image_names(texts: list[str], n: int, out_dir: Path) -> list[str]:
    """Per caption, a file-name stem no other caption of this call and no file already in
    `out_dir` uses: its slug plus a short hash of the whole caption (slugs are cut at 60
    characters, and captions without letters share one), then -2, -3, ... if still taken."""
    taken: set[str] = set()
    names = []
    for text in texts:
        base = f"{slug(text)}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"
        name, k = base, 1
        while name in taken or (out_dir / f"{name}.png").exists() or (out_dir / f"{name}_0.png").exists():
            k += 1
            name = f"{base}-{k}"
        taken.add(name)
        names.append(name)
    return names


def images_for_captions(model, text, captions: list[str], n: int, seed: int) -> torch.Tensor:
    """(captions, n, C, S, S) in [-1, 1]: the one way a text-to-image model draws for typed
    captions, from a checkpoint (below) or an exported folder (t2i.pretrained): `text` (a
    captioned data module, or the one an export restores) encodes them as in training."""
    return model.images_for_text(text.encode(captions), n, seed=seed)


def generate_from_checkpoint(cfg, generator=None) -> list[Path]:
    """generate.py: images for typed captions from a checkpoint (no dataset needed: the
    vocabulary and word vectors travel in the checkpoint), or from `generator`, an
    exported folder loaded by t2i.pretrained (generate.py model=DIR). Writes, per caption,
    `<name>_<i>.png` for each image and `<name>.png` with all of them, `<name>` being the
    caption's slug and a short hash (see image_names): nothing is overwritten. Unknown
    words are warned about (by the data module's `encode`) and count as zero vectors."""
    if not cfg.get("ckpt_path") and generator is None:
        raise ConfigError("generate.py needs ckpt_path=PATH/TO/last.ckpt or model=EXPORTED_DIR")
    texts = cfg.get("text")
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError('generate.py needs text="a caption" (or text=["one","two"]); see the README for quoting '
                          "commas, apostrophes and emoji")
    check_config(cfg)
    n = int(cfg.get("n", 8))
    device = torch.device(cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
    if generator is not None:
        if not generator.conditional:
            raise ConfigError(f"{cfg.model_dir} is an unconditional generator: generate.py needs a text-to-image one")
        generator.model.to(device)
        images = generator.generate(texts, n, seed=int(cfg.get("seed", 0)))
    else:
        model, datamodule, _ = load_checkpoint(cfg.ckpt_path, trust=trusted(cfg))
        if not hasattr(datamodule, "encode") or not is_text_to_image(model):
            raise CheckpointError(f"{cfg.ckpt_path} is a {type(model).__name__} on {type(datamodule).__name__}: "
                                  "generate.py needs a text-to-image checkpoint (e.g. experiment=shapes_gan_cls)")
        model.to(device)
        images = images_for_captions(model, datamodule, texts, n, int(cfg.get("seed", 0)))
    out_dir = Path(cfg.paths.output_dir)
    with RunFolder(out_dir):  # never into a folder another command is writing
        write_hydra_record(cfg, out_dir, job="generate")
        return write_images(texts, images, n, out_dir)


def write_images(texts: list[str], images, n: int, out_dir: Path) -> list[Path]:
    """Per caption, its images and their grid (names: image_names)."""
    written = []
    for text, name, per_caption in zip(texts, image_names(texts, n, out_dir), images):
        for i, image in enumerate(per_caption):
            with atomic_path(out_dir / f"{name}_{i}.png") as tmp:
                save_image(to_unit(image), tmp)
            written.append(out_dir / f"{name}_{i}.png")
        with atomic_path(out_dir / f"{name}.png") as tmp:
            save_image(grid(per_caption, nrow=n), tmp)
        written.append(out_dir / f"{name}.png")
        log.info("%r: %d images in %s (%s_*.png, grid %s.png)", text, n, out_dir, name, name)
    return written
