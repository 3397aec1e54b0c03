"""The source report's regression models, trained with MSE (automatic optimisation):

- `FeatureToImage` ("GNN", a generative CNN): a feature vector -> the image. The
  features are the data's attribute vector (shapes: shape, size[, x, y[, filled]]) or,
  with `ae_ckpt`, the bottleneck code of a trained autoencoder's frozen encoder.
- `Autoencoder`: conv encoder -> bottleneck -> deconv decoder. At the end of training it
  saves every split's bottleneck features to RUN/features.pt; its checkpoint is what
  `FeatureToImage` and `DCGANAEFeatures` read the encoder from (`model.ae_ckpt=PATH`).

Both log train/loss and val/loss per epoch, write reconstruction grids (real and
predicted side by side) through the sample-grid callback, and `evaluate` to val/test MSE
(t2i.evaluation.reconstruction).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from t2i.atomic_files import atomic_save
from t2i.checkpoint_checks import read_checkpoint
from t2i.data.batches import eval_batches
from t2i.evaluation.reconstruction import evaluate_reconstruction
from t2i.nets.autoencoder import ConvAutoencoder, ConvEncoder, DeconvDecoder
from t2i.tensors import evaluating

log = logging.getLogger("t2i")
ENCODER_PREFIX = "autoencoder.encoder."
FEATURE_SOURCES = ("attributes", "autoencoder")


# --------------------------------------------------------------- frozen encoder
def load_frozen_encoder(ae_ckpt: str | None, channels: int, image_size: int, allow_untrained: bool = False,
                        fallback_bottleneck: int = 100, user: str = "this model") -> ConvEncoder:
    """The encoder of an `Autoencoder` checkpoint, frozen. Without a checkpoint this is
    an error, except under fast_dev_run (`allow_untrained`), where a freshly initialised
    encoder lets the smoke test run the same code path; it says so loudly."""
    if not ae_ckpt:
        if not allow_untrained:
            raise ValueError(
                f"{user} needs a trained autoencoder: model.ae_ckpt=PATH. Train one first, e.g. "
                "`python train.py experiment=shapes_autoencoder hydra.run.dir=RUN` (mnist_autoencoder for MNIST), "
                "then pass model.ae_ckpt=RUN/checkpoints/last.ckpt")
        log.warning("!!! model.ae_ckpt is not set: using an UNTRAINED encoder (bottleneck %d). Allowed only "
                    "for fast_dev_run smoke tests; results mean nothing.", fallback_bottleneck)
        encoder = ConvEncoder(fallback_bottleneck, channels, image_size)
    else:
        encoder = _encoder_from_checkpoint(Path(ae_ckpt).expanduser(), channels, image_size)
    encoder.eval().requires_grad_(False)
    return encoder


def _encoder_from_checkpoint(path: Path, channels: int, image_size: int) -> ConvEncoder:
    if not path.exists():
        raise FileNotFoundError(f"model.ae_ckpt={path}: no such checkpoint (an autoencoder run's "
                                "checkpoints/last.ckpt)")
    ckpt = read_checkpoint(path)  # the one checkpoint reader: no code run from it, one-line errors
    hp = ckpt.get("hyper_parameters", {})
    state = {k[len(ENCODER_PREFIX):]: v for k, v in ckpt.get("state_dict", {}).items()
             if k.startswith(ENCODER_PREFIX)}
    if not state or "bottleneck" not in hp:
        raise ValueError(f"model.ae_ckpt={path} is not an autoencoder checkpoint (no {ENCODER_PREFIX}* "
                         "weights): give the checkpoint of a shapes_autoencoder / mnist_autoencoder run")
    if (hp.get("channels"), hp.get("image_size")) != (channels, image_size):
        raise ValueError(f"model.ae_ckpt={path} encodes {hp.get('channels')}-channel {hp.get('image_size')}px "
                         f"images, but this data has {channels} channels at {image_size}px: train the "
                         "autoencoder on the same data settings (data.image_size)")
    encoder = ConvEncoder(hp["bottleneck"], channels, image_size, hp.get("width", 32),
                          hp.get("code_activation", "tanh"))
    encoder.load_state_dict(state)
    return encoder


# --------------------------------------------------------------- shared task
class ReconstructionTask(pl.LightningModule):
    """MSE between `predict(batch)` and the batch's images; subclasses define `predict`."""

    frozen: tuple[str, ...] = ()  # submodules kept in eval mode and out of the optimiser

    def __init__(self, optimizer: Callable):
        super().__init__()
        self.optimizer = optimizer

    def predict(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def _loss(self, batch: dict, split: str) -> torch.Tensor:
        loss = F.mse_loss(self.predict(batch), batch["image"])
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=batch["image"].shape[0])
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._loss(batch, "val")

    def test_step(self, batch, batch_idx):
        self._loss(batch, "test")

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.frozen:  # a frozen encoder's batch-norm statistics stay as trained
            getattr(self, name).eval()
        return self

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return self.optimizer(params=params)

    # ------------------------------------------------------------ pictures
    def preview(self, batch: dict) -> torch.Tensor:
        """Real and predicted images interleaved (real, predicted, real, ...): in the
        sample grid each real image sits left of its prediction."""
        half = batch["image"][: max(1, batch["image"].shape[0] // 2)]
        small = {k: v[: len(half)] if torch.is_tensor(v) or isinstance(v, list) else v for k, v in batch.items()}
        pred = self.predict(small)
        return torch.stack([half.to(pred.dtype), pred], 1).flatten(0, 1)

    # ---------------------------------------------------------- evaluation
    def evaluate(self, datamodule, settings, out_dir) -> dict:
        return evaluate_reconstruction(self, datamodule, settings, out_dir)


# --------------------------------------------------------------- GNN
class FeatureToImage(ReconstructionTask):
    """The source report's generative CNN: features -> image, MSE. `features`: "attributes"
    (`batch["attributes"]`) or "autoencoder" (the frozen encoder of the autoencoder
    checkpoint `ae_ckpt`, coding the image); giving `ae_ckpt` implies "autoencoder"."""

    def __init__(self, optimizer: Callable, channels: int = 1, image_size: int = 32,
                 in_features: int | None = None, width: int = 32, features: str = "attributes",
                 ae_ckpt: str | None = None, allow_untrained_encoder: bool = False):
        super().__init__(optimizer)
        if features not in FEATURE_SOURCES:
            raise ValueError(f"model.features must be one of {FEATURE_SOURCES}, got {features!r}")
        self.save_hyperparameters(ignore=["optimizer"])
        self.encoder = None
        if ae_ckpt or features == "autoencoder":
            self.encoder = load_frozen_encoder(ae_ckpt, channels, image_size, bool(allow_untrained_encoder),
                                               in_features or 100, "shapes_deconv_from_ae")
            self.frozen = ("encoder",)
            if in_features not in (None, self.encoder.bottleneck):
                raise ValueError(f"model.in_features={in_features} but the autoencoder's bottleneck is "
                                 f"{self.encoder.bottleneck}: leave model.in_features=null")
            in_features = self.encoder.bottleneck
        if in_features is None:
            raise ValueError("model.in_features is needed (e.g. ${data.num_features}) when no model.ae_ckpt is given")
        self.decoder = DeconvDecoder(in_features, channels, image_size, width)

    def features(self, batch: dict) -> torch.Tensor:
        if self.encoder is not None:
            with torch.no_grad():
                return self.encoder(batch["image"])
        if "attributes" not in batch:
            raise KeyError("this data module gives no `attributes` to map to images: use data=shapes, "
                           "or model.ae_ckpt=PATH to use an autoencoder's features")
        return batch["attributes"]

    def predict(self, batch: dict) -> torch.Tensor:
        return self.decoder(self.features(batch))


# --------------------------------------------------------------- autoencoder
class Autoencoder(ReconstructionTask):
    def __init__(self, optimizer: Callable, channels: int = 1, image_size: int = 32, bottleneck: int = 100,
                 width: int = 32, code_activation: str = "tanh", save_features: bool = True):
        super().__init__(optimizer)
        self.save_hyperparameters(ignore=["optimizer"])
        self.autoencoder = ConvAutoencoder(bottleneck, channels, image_size, width, code_activation)
        self.save_features = save_features

    def predict(self, batch: dict) -> torch.Tensor:
        return self.autoencoder(batch["image"])[0]

    def encode_split(self, datamodule, split: str, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Every item of a split: its code, with the split's per-item tensors
        (attributes, targets, label) kept alongside for analysis."""
        parts: dict[str, list] = {}
        with evaluating(self):
            for batch in eval_batches(datamodule, 10 ** 9, batch_size, split):
                parts.setdefault("code", []).append(self.autoencoder.encoder(batch["image"].to(self.device)).cpu())
                for key, value in batch.items():
                    if torch.is_tensor(value) and key != "image":
                        parts.setdefault(key, []).append(value.cpu())
        return {k: torch.cat(v) for k, v in parts.items()}

    def on_fit_end(self) -> None:
        """RUN/features.pt: {split: {"code": (N, bottleneck), "attributes"/"targets"/...}}."""
        trainer = self.trainer
        if not self.save_features or trainer.fast_dev_run or not trainer.is_global_zero:
            return
        features = {split: self.encode_split(trainer.datamodule, split) for split in ("train", "val", "test")}
        path = Path(trainer.default_root_dir) / "features.pt"
        atomic_save({"bottleneck": self.hparams.bottleneck, "splits": features}, path)
        log.info("bottleneck features of every split saved to %s", path)
