"""The image-generator contract: what evaluation, the in-training monitor, generate.py,
export and the demo may rely on. Every model that draws images from noise (and text)
inherits `ImageGenerator`; a model that does not (an inpainter, an autoencoder, a
classifier) does not, and is never scored as one.

It sits below evaluation and the tasks (it imports only torch): evaluation asks a model
what it uses (`uses_noise`, `uses_text`) instead of guessing from its methods."""
from __future__ import annotations

import torch

from t2i.tensors import evaluating, to_device

NOISE_KINDS = ("uniform", "normal")


def draw_noise(n: int, nz: int, kind: str, generator: torch.Generator, device=None) -> torch.Tensor:
    """The one way z is drawn: U(-1, 1) (the source report's choice) or N(0, 1), from
    `generator` (so a seed fixes it), on `device`."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"model.noise must be one of {NOISE_KINDS}, got {kind!r}")
    gen_device = generator.device
    if kind == "uniform":
        z = torch.rand(n, nz, generator=generator, device=gen_device).mul_(2).sub_(1)
    else:
        z = torch.randn(n, nz, generator=generator, device=gen_device)
    return z if device is None else z.to(device)


class ImageGenerator:
    """Mixin for every image generator (a `LightningModule` with `self.nz`,
    `self.noise_kind`, `self.device`). Subclasses implement `generate` and `noise`, and
    say what their images depend on:

    - `uses_noise`: z changes the image, so a latent interpolation means something
      (False for a generator fed a code of the real image instead, dcgan_ae_features);
    - `uses_text`: captions steer the image, so captions.png, R-precision, colour
      accuracy and `generate.py text=...` apply; such a model implements `images_for_text`.
    """

    uses_noise: bool = True
    uses_text: bool = False

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] for a batch's conditioning and latent z (B, nz)."""
        raise NotImplementedError

    def sample(self, batches) -> torch.Tensor:
        """One image per item of `batches` (an iterable of batches) in eval mode, with
        noise fixed by the seed (the model's `noise(n, stream, step)`); float images in
        [-1, 1] on CPU."""
        out = []
        with evaluating(self):
            for i, batch in enumerate(batches):
                batch = to_device(batch, self.device)
                z = self.noise(batch["image"].shape[0], stream=20_000 + i, step=0)
                out.append(self.generate(batch, z).float().cpu())
        return torch.cat(out)

    def images_for_text(self, encoded: dict, n: int, seed: int = 0) -> torch.Tensor:
        """`n` images per encoded caption: (captions, n, C, S, S). Only where `uses_text`."""
        raise NotImplementedError(f"{type(self).__name__} does not draw from text")

    def draw_noise(self, n: int, seed: int) -> torch.Tensor:
        """z from an explicit seed (generate.py's `seed`, an exported generator's), in the
        model's noise kind: the same seed gives the same images on any machine."""
        return draw_noise(n, self.nz, self.noise_kind, torch.Generator().manual_seed(seed), self.device)


def is_text_to_image(model) -> bool:
    return isinstance(model, ImageGenerator) and model.uses_text
