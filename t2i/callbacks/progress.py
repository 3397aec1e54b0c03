"""A progress bar that counts what bounds the run: with trainer.max_steps (GANs count
generator steps), one bar `step / max_steps` over the whole run, titled with the epoch;
Lightning's own reads "Epoch 16/-2" when max_epochs=-1 and restarts at every epoch."""
from __future__ import annotations

from pytorch_lightning.callbacks import RichProgressBar
from pytorch_lightning.callbacks.progress.rich_progress import _RICH_AVAILABLE


class StepProgressBar(RichProgressBar):
    def counts_steps(self) -> bool:
        trainer = self.trainer
        return trainer.max_steps is not None and trainer.max_steps > 0 and not trainer.fast_dev_run

    @property
    def total_train_batches(self):
        return self.trainer.max_steps if self.counts_steps() else super().total_train_batches

    def _get_train_description(self, current_epoch: int) -> str:
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs < 0:  # bounded by steps or time: no epoch total
            return f"Epoch {current_epoch}"
        return f"Epoch {current_epoch}/{max_epochs - 1}"

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.counts_steps() and self.progress is not None and self.train_progress_bar_id is not None:
            # the same bar goes on: only its title changes
            self.progress.update(self.train_progress_bar_id, description=self._get_train_description(
                trainer.current_epoch))
            self.refresh()
            return
        super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.counts_steps():
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if not self.is_disabled and self.train_progress_bar_id is None:
            self._initialize_train_progress_bar_id()  # resumed in the middle of an epoch
        self._update(self.train_progress_bar_id, trainer.global_step)
        self._update_metrics(trainer, pl_module)
        self.refresh()


def progress_bars(trainer_cfg) -> list:
    """The bar for train(), where the trainer shows one (Lightning refuses a progress-bar
    callback when trainer.enable_progress_bar=false). Without `rich`, Lightning's tqdm bar
    stays: it shows "Epoch N" and the epoch's batches, no negative total."""
    return [StepProgressBar()] if trainer_cfg.get("enable_progress_bar", True) and _RICH_AVAILABLE else []
