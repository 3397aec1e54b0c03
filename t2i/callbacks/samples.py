"""Sample grids from a fixed batch (fixed noise, fixed captions) every N steps: PNG
files under the run directory, and images in TensorBoard / W&B."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torchvision.utils import save_image

from t2i.atomic_files import atomic_path
from t2i.images import grid
from t2i.tensors import evaluating, to_device


def log_image(trainer: pl.Trainer, key: str, image: torch.Tensor, caption: str | None = None) -> None:
    """Send a [0, 1] CHW image to every logger that takes images."""
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):  # TensorBoard
            experiment.add_image(key, image, trainer.global_step)
        elif hasattr(logger, "log_image"):  # W&B
            extra = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[image], step=trainer.global_step, **extra)


class SampleGrid(pl.Callback):
    def __init__(self, every_n_steps: int = 250, num_images: int = 64, dirpath: str = "samples"):
        self.every_n_steps, self.num_images, self.dirpath = every_n_steps, num_images, Path(dirpath)
        self.batch = None

    def _fixed_batch(self, trainer: pl.Trainer) -> dict:
        dm = trainer.datamodule
        dataset = dm.val_set if getattr(dm, "val_set", None) is not None else dm.train_set
        items = [dataset[i] for i in range(min(self.num_images, len(dataset)))]
        collate = getattr(dm, "collate_fn", None) or torch.utils.data.default_collate
        return collate(items)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.batch is None:
            self.batch = self._fixed_batch(trainer)
        batch = to_device(self.batch, pl_module.device)
        with evaluating(pl_module):
            images = pl_module.preview(batch).float().cpu()
        picture = grid(images)
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.dirpath / f"step_{trainer.global_step:06d}.png") as tmp:
                save_image(picture, tmp)
            log_image(trainer, "samples", picture)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0 and not trainer.sanity_checking:
            self._write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module)
