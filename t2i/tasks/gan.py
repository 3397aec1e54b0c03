"""The one GAN step every adversarial model here shares: k discriminator steps, then
a generator step, with Lightning manual optimisation (AMP-aware through
`manual_backward`) and the non-finite-loss guard in one place."""
from __future__ import annotations

import logging
from typing import Callable

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer

from t2i.image_generator import NOISE_KINDS, draw_noise
from t2i.tasks.gan_losses import bce, mode_seeking_ratio, r1_penalty, weighted_mean
from t2i.tensors import derived_seed

log = logging.getLogger("t2i")
__all__ = ["GANTask", "NonFiniteLossError", "bce", "mode_seeking_ratio", "r1_penalty", "training_progress",
           "weighted_mean"]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN/inf. Raised (not logged) so no checkpoint of broken weights is
    written: the last good `last.ckpt` stays, and `ckpt_path=last` resumes from it."""


def _no_op() -> None:
    pass

def training_progress(step: int, max_steps: int | None, timers=()) -> float:
    """How far training is, in [0, 1]: the further along of step / max_steps and of each
    Timer's elapsed / (elapsed + remaining) training time (trainer.max_time)."""
    done = step / max_steps if max_steps and max_steps > 0 else 0.0
    for timer in timers:
        elapsed, left = timer.time_elapsed("train"), timer.time_remaining("train")
        if left is not None and elapsed + left > 0:
            done = max(done, elapsed / (elapsed + left))
    return min(1.0, done)


class GANTask(pl.LightningModule):
    """Subclasses build `self.generator` and `self.discriminator` and define
    `generate`, `discriminator_loss`, `generator_loss`, `preview` and `evaluate`."""

    def __init__(self, optimizer_g: Callable, optimizer_d: Callable, d_steps: int = 1,
                 nz: int = 100, noise: str = "uniform", seed: int = 0, channels_last: bool = False,
                 lr_decay: float = 0.0, mode_seeking: float = 0.0, mode_seeking_bound: float | None = None):
        super().__init__()
        if d_steps < 1:
            raise ValueError(f"model.d_steps must be >= 1, got {d_steps}")
        if not 0.0 <= lr_decay <= 1.0:
            raise ValueError(f"model.lr_decay must be in [0, 1] (the last fraction of training over which both "
                             f"learning rates fall linearly to 0; 0: constant), got {lr_decay}")
        if mode_seeking < 0:
            raise ValueError(f"model.mode_seeking must be >= 0 (0: off; MSGAN's weight is 1), got {mode_seeking}")
        if mode_seeking_bound is not None and mode_seeking_bound <= 0:
            raise ValueError(f"model.mode_seeking_bound must be > 0 or null (unbounded), got {mode_seeking_bound}")
        if noise not in NOISE_KINDS:
            raise ValueError(f"model.noise must be one of {NOISE_KINDS}, got {noise!r}")
        self.automatic_optimization = False
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.d_steps, self.nz, self.noise_kind, self.seed = d_steps, nz, noise, seed
        self.channels_last, self.lr_decay = channels_last, float(lr_decay)
        self.mode_seeking = float(mode_seeking)
        self.mode_seeking_bound = None if mode_seeking_bound is None else float(mode_seeking_bound)
        self.base_lr: list[float] = []  # set by configure_optimizers
        # taken over from the Trainer, which refuses them under manual optimisation
        self.gradient_clip: dict | None = None
        self.accumulate, self.accumulated = 1, 0
        self.d_calls = 0  # D steps taken: the clock of lazy regularisation, kept in checkpoints

    def configure_callbacks(self):
        # Lightning calls this before it checks the Trainer's settings, and raises on
        # gradient_clip_val or accumulate_grad_batches under manual optimisation: the GAN
        # step applies both itself instead.
        self.take_over_trainer_settings(self.trainer)
        return super().configure_callbacks()

    def take_over_trainer_settings(self, trainer: pl.Trainer) -> None:
        if trainer.gradient_clip_val:
            algorithm = getattr(trainer.gradient_clip_algorithm, "value", trainer.gradient_clip_algorithm) or "norm"
            self.gradient_clip = dict(gradient_clip_val=float(trainer.gradient_clip_val),
                                      gradient_clip_algorithm=algorithm)
            trainer.gradient_clip_val = trainer.gradient_clip_algorithm = None
            log.info("trainer.gradient_clip_val=%g (by %s) is applied by the GAN step to D and G (Lightning "
                     "clips only under automatic optimisation)", self.gradient_clip["gradient_clip_val"], algorithm)
        if trainer.accumulate_grad_batches != 1:
            if self.d_steps != 1:
                raise ValueError(f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches} needs "
                                 f"model.d_steps=1 (got {self.d_steps}): with several D steps per batch there is "
                                 "no single gradient to accumulate. Raise data.batch_size instead.")
            self.accumulate, trainer.accumulate_grad_batches = int(trainer.accumulate_grad_batches), 1
            log.info("trainer.accumulate_grad_batches=%d is applied by the GAN step: D and G step once per %d "
                     "batches (trainer.max_steps counts those steps)", self.accumulate, self.accumulate)

    # ------------------------------------------------- memory layout
    # `model.channels_last`: convolutions in NHWC layout. On a CPU (oneDNN) the DCGAN step
    # runs faster (measured in docs/shapes_dcgan.md), and on a GPU under mixed precision it is the tensor
    # cores' layout. The numbers are the same maths in another memory order.
    def on_fit_start(self) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        super().on_fit_start()

    def in_layout(self, batch: dict) -> dict:
        if not self.channels_last:
            return batch
        return {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.dim() == 4 else v
                for k, v in batch.items()}

    def clip(self, optimizer) -> None:
        if self.gradient_clip:
            self.clip_gradients(optimizer, **self.gradient_clip)

    # ----------------------------------------------------- learning rate
    # `model.lr_decay=f`: both learning rates fall linearly to 0 over the last fraction f of
    # training. Progress is the further along of trainer.max_steps and trainer.max_time, so
    # a run that a slow machine stops at max_time has still decayed to 0 when it ends.
    def progress(self) -> float:
        timers = [c for c in self.trainer.callbacks if isinstance(c, Timer)]
        return training_progress(self.global_step, self.trainer.max_steps, timers)

    def lr_factor(self, progress: float) -> float:
        if self.lr_decay <= 0:
            return 1.0
        return min(1.0, (1.0 - progress) / self.lr_decay)

    def apply_lr_decay(self, *optimizers) -> None:
        if self.lr_decay <= 0:
            return
        factor, lrs = self.lr_factor(self.progress()), iter(self.base_lr)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = next(lrs) * factor

    # ---------------------------------------------------------------- noise
    def rng(self, stream: int = 0, step: int | None = None) -> torch.Generator:
        """A generator on the model's device seeded by (seed, rank, step, stream) only: a
        resumed run draws exactly what an uninterrupted one would have drawn."""
        step = self.global_step if step is None else step
        rank = self.global_rank if self._trainer is not None else 0
        return torch.Generator(device=self.device).manual_seed(
            derived_seed(self.seed, rank * 7_919 + step * 31 + stream) % (2 ** 63))

    def noise(self, n: int, stream: int = 0, step: int | None = None) -> torch.Tensor:
        """Latent z from `rng(stream, step)`."""
        return draw_noise(n, self.nz, self.noise_kind, self.rng(stream, step))

    # ------------------------------------------------- lazy regularisation
    def lazy_due(self, every: int, weight: float) -> bool:
        """Lazy regularisation (StyleGAN2): a penalty on every `every`-th D step only,
        weighted `every` times by the caller, so its mean pull is the same and its double
        backward is paid once per `every` steps. One clock for every model: D steps taken."""
        return weight > 0 and self.d_calls % every == 0

    # the clock travels in checkpoints: a resumed run regularises on the same steps
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan_d_calls"] = self.d_calls

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        # df_gan_d_calls: checkpoints written before the clock was shared
        self.d_calls = int(checkpoint.get("gan_d_calls", checkpoint.get("df_gan_d_calls", 0)))

    # ------------------------------------------------------- to implement
    def generate(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def discriminator_loss(self, batch: dict, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def generator_loss(self, batch: dict, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def generate_for_step(self, batch: dict, z: torch.Tensor) -> torch.Tensor:
        """What the training step hands to both losses: by default the images. A model
        whose losses need more (cond_dcgan_lstm: every LSTM step's output) returns that
        tensor instead; `generate` keeps returning images for sampling."""
        return self.generate(batch, z)

    def generator_parameters(self):
        return self.generator.parameters()

    def discriminator_parameters(self):
        return self.discriminator.parameters()

    # ------------------------------------------------------------- the step
    def check_finite(self, loss: torch.Tensor, name: str) -> None:
        if not torch.isfinite(loss).item():
            raise NonFiniteLossError(
                f"{name} loss became {loss.item()} at step {self.global_step}. Training stopped; the last "
                "good checkpoint is kept (resume with ckpt_path=last). Fixes: lower the learning rate, "
                "use trainer.precision=bf16-mixed or 32 instead of 16-mixed, or check the data.")

    def backward_and_step(self, opt, loss: torch.Tensor, first: bool, step_now: bool, scale: float) -> None:
        """One optimizer's share of the step: gradients zeroed at the first accumulated
        batch, the (scaled) loss backpropagated, clipped and applied at the last."""
        if first:
            opt.zero_grad(set_to_none=True)
        self.manual_backward(loss * scale if self.accumulate > 1 else loss)
        if step_now:
            self.clip(opt)
            opt.step()

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        batch = self.in_layout(batch)
        # Lightning counts every optimizer.step() as a global step; count only the
        # generator's, so trainer.max_steps and every_n_train_steps mean iterations.
        opt_d._on_before_step = opt_d._on_after_step = _no_op
        n = batch["image"].shape[0]
        # trainer.accumulate_grad_batches=N: both nets step once per N batches, on the mean gradient
        self.accumulated = self.accumulated % self.accumulate + 1
        first, step_now, scale = self.accumulated == 1, self.accumulated == self.accumulate, 1.0 / self.accumulate
        self.apply_lr_decay(opt_g, opt_d)
        for k in range(self.d_steps):
            last = k == self.d_steps - 1
            # The last fake keeps its graph and is reused for the generator step, as in
            # pytorch/examples' dcgan; earlier ones need no graph at all.
            z = self.noise(n, stream=k + 1_000 * (self.accumulated - 1))
            with torch.set_grad_enabled(last):
                fake = self.generate_for_step(batch, z)
            self.toggle_optimizer(opt_d)
            d_loss, d_logs = self.discriminator_loss(batch, fake.detach())
            self.d_calls += 1
            self.check_finite(d_loss, "discriminator")
            self.backward_and_step(opt_d, d_loss, first, step_now, scale)
            self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)  # D's weights get no gradient from the G step
        g_loss, g_logs = self.generator_loss(batch, fake)
        if self.mode_seeking > 0:
            ms_loss, ratio = self.mode_seeking_loss(batch, fake, z)
            g_loss = g_loss + self.mode_seeking * ms_loss
            g_logs = {**g_logs, "train/mode_seeking_ratio": ratio}
        self.check_finite(g_loss, "generator")
        self.backward_and_step(opt_g, g_loss, first, step_now, scale)
        self.untoggle_optimizer(opt_g)

        logs = {"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach(), **d_logs, **g_logs}
        self.log_dict({k: v.detach().float() if torch.is_tensor(v) else v for k, v in logs.items()},
                      prog_bar=False, batch_size=n)
        self.log_dict({"d": d_loss.detach().float(), "g": g_loss.detach().float()}, prog_bar=True,
                      logger=False, batch_size=n)

    def mode_seeking_loss(self, batch: dict, fake: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`model.mode_seeking=w` (MSGAN): the first half of the batch is drawn again with
        other noise and G is penalised by 1 / (ratio + eps), eps = 1e-5 as in the paper's
        code. Half a batch keeps the extra generator pass at +50% of G's cost.
        `model.mode_seeking_bound=tau` caps the ratio at tau, as DSGAN's diversity term does
        (Yang et al. 2019): past that much variety G is no longer pushed, so it does not buy
        more of it with background speckle (seen on shapes with the unbounded term)."""
        half = max(1, fake.shape[0] // 2)
        z_b = self.noise(half, stream=40_000 + self.accumulated)
        part = {k: v[:half] if isinstance(v, (list, torch.Tensor)) and len(v) == len(fake) else v
                for k, v in batch.items()}
        fake_b = self.generate_for_step(part, z_b)
        ratio = mode_seeking_ratio(fake[:half], fake_b, z[:half], z_b)
        capped = ratio if self.mode_seeking_bound is None else ratio.clamp(max=self.mode_seeking_bound)
        return 1.0 / (capped + 1e-5), ratio.detach()

    def configure_optimizers(self):
        opt_g = self.optimizer_g(params=self.generator_parameters())
        opt_d = self.optimizer_d(params=self.discriminator_parameters())
        # the configured rates, before a resumed run's (decayed) optimizer states are loaded
        self.base_lr = [group["lr"] for opt in (opt_g, opt_d) for group in opt.param_groups]
        return [opt_g, opt_d]

    # ------------------------------------------------------------ sampling
    def preview(self, batch: dict) -> torch.Tensor:
        """Images for a sample grid from a fixed batch (fixed noise, fixed captions)."""
        z = self.noise(batch["image"].shape[0], stream=10_000, step=0)
        return self.generate(batch, z)
