"""DCGAN fed an autoencoder's features instead of noise (the source report's last circle/square
experiment): the generator's input for each real image is the frozen AE encoder's
code of that image, where the plain DCGAN draws z ~ U(-1, 1). Everything else
(nets, losses, the shared GAN step, FID evaluation) is the plain DCGAN's, so
`shapes_dcgan` vs `shapes_dcgan_ae_features` compares only the generator's input."""
from __future__ import annotations

import torch

from t2i.tasks.dcgan import DCGAN
from t2i.tasks.reconstruction import load_frozen_encoder


class DCGANAEFeatures(DCGAN):
    uses_noise = False  # the input is the real image's code, not z: no latent interpolation

    def __init__(self, ae_ckpt: str | None = None, allow_untrained_encoder: bool = False, **dcgan_kw):
        super().__init__(**dcgan_kw)
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        self.encoder = load_frozen_encoder(ae_ckpt, self.hparams.channels, self.hparams.image_size,
                                           bool(allow_untrained_encoder), self.nz, "dcgan_ae_features")
        if self.encoder.bottleneck != self.nz:
            raise ValueError(f"the autoencoder's bottleneck is {self.encoder.bottleneck} but model.nz={self.nz}: "
                             "the DCGAN's input is the code, so train the autoencoder with "
                             f"model.bottleneck={self.nz} (or set model.nz={self.encoder.bottleneck})")

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: its batch-norm statistics stay as trained
        return self

    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        # z (the noise the shared step draws) is unused: the input is the real image's code.
        with torch.no_grad():
            code = self.encoder(batch["image"])
        return self.generator(code)
