"""model.mode_seeking (MSGAN) and its bound (DSGAN): the ratio, its gradient, and a GAN
step that uses it."""
import csv

import pytest
import torch

from t2i.run import train
from t2i.tasks.gan import GANTask, mode_seeking_ratio


def test_ratio_is_image_distance_over_noise_distance():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    za, zb = torch.zeros(2, 10), torch.ones(2, 10)
    assert mode_seeking_ratio(a, b, za, zb).item() == pytest.approx(0.5)
    assert mode_seeking_ratio(a, a, za, zb).item() == 0.0


class Tiny(GANTask):
    """A generator whose output is w * z[:, :1]: the ratio grows with |w|."""

    def __init__(self, **kw):
        super().__init__(optimizer_g=None, optimizer_d=None, nz=4, **kw)
        self.w = torch.nn.Parameter(torch.tensor(0.01))

    def generate_for_step(self, batch, z):
        return (self.w * z[:, :1]).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


@pytest.mark.parametrize("bound, pushed", [(None, True), (1e-6, False)])
def test_the_term_pushes_towards_variety_until_the_bound(bound, pushed):
    task = Tiny(mode_seeking=1.0, mode_seeking_bound=bound)
    z = task.noise(8, stream=1, step=0)
    fake = task.generate_for_step({"image": torch.zeros(8, 1, 2, 2)}, z)
    loss, ratio = task.mode_seeking_loss({"image": torch.zeros(8, 1, 2, 2)}, fake, z)
    loss.backward()
    assert ratio > 0
    # the loss falls as |w| grows: its gradient on w points to larger |w| (negative here)
    assert (task.w.grad < 0).item() if pushed else task.w.grad.abs().item() == 0.0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mode_seeking must be >= 0"):
        Tiny(mode_seeking=-1.0)
    with pytest.raises(ValueError, match="mode_seeking_bound must be > 0"):
        Tiny(mode_seeking=1.0, mode_seeking_bound=0.0)


def test_gan_cls_trains_with_it_and_logs_the_ratio(make_cfg, tmp_path):
    cfg = make_cfg(["data.splits=[64,32,32]", "model.ngf=8", "model.ndf=8", "trainer.max_steps=3",
                    "trainer.max_time=null", "eval.every_n_steps=0", "evaluate_after_fit=false",
                    "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "model.mode_seeking=1.0",
                    "model.mode_seeking_bound=0.5", "callbacks.sample_grid.every_n_steps=1000"])
    train(cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "csv" / "metrics.csv")))
    ratios = [float(r["train/mode_seeking_ratio"]) for r in rows if r.get("train/mode_seeking_ratio")]
    assert len(ratios) == 3 and all(r > 0 for r in ratios)
