"""The circle/square study's models: nets, the generative CNN, the autoencoder's saved
features and checkpoint feeding the GNN and the DCGAN, and their errors."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from t2i.data.synthetic.shapes import ShapesDataModule
from t2i.evaluation.image_evaluation import write_pictures
from t2i.nets.autoencoder import ConvAutoencoder, ConvEncoder, DeconvDecoder
from t2i.run import evaluate, load_checkpoint, train
from t2i.tasks.reconstruction import ReconstructionTask
from tests.conftest import compose_config

TINY = ["data.splits=[96,32,32]", "data.batch_size=32", "trainer.enable_progress_bar=false"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions run far faster on one thread than on threads fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory) -> Path:
    """One short shapes_autoencoder run (bottleneck 100), shared by the tests below."""

    tmp = tmp_path_factory.mktemp("ae")
    out = tmp / "run"
    torch.set_num_threads(1)
    cfg = compose_config("train", [f"paths.cache_dir={tmp / 'cache'}", "experiment=shapes_autoencoder",
                                   "trainer.max_epochs=2", "model.width=8", *TINY], out)
    train(cfg)
    return out


def read_csv(path: Path) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if v and k not in ("epoch", "step"):
                    series.setdefault(k, []).append(float(v))
    return series


@pytest.mark.parametrize("size", [32, 64])
def test_nets_shapes_and_code_range(size):
    decoder = DeconvDecoder(4, 1, size, width=8)
    assert decoder(torch.rand(3, 4)).shape == (3, 1, size, size)
    encoder = ConvEncoder(5, 3, size, width=8)
    code = encoder(torch.randn(3, 3, size, size) * 10)
    assert code.shape == (3, 5) and code.abs().max() < 1  # tanh: the uniform noise's range
    recon, code = ConvAutoencoder(100, 1, size, width=8)(torch.rand(2, 1, size, size))
    assert recon.shape == (2, 1, size, size) and code.shape == (2, 100)
    raw = ConvEncoder(5, 1, size, code_activation="none").eval()
    raw.net[-1].weight.data.mul_(1000)  # a code far outside (-1, 1) stays there without tanh
    x = torch.randn(2, 1, size, size)
    assert torch.equal(raw(x), raw.net(x).flatten(1)) and raw(x).abs().max() > 1
    with pytest.raises(ValueError, match="code_activation"):
        ConvEncoder(5, 1, size, code_activation="relu")


def test_gnn_learns_and_logs_curves(make_cfg, tmp_path):
    out = tmp_path / "gnn"
    cfg = make_cfg(["experiment=shapes_gnn", "data.position=fixed", "trainer.max_epochs=3", "model.width=8",
                    *TINY], out=out)
    assert cfg.model.in_features == 4 and cfg.trainer.limit_val_batches == 1.0
    train(cfg)
    series = read_csv(out / "csv" / "metrics.csv")
    assert len(series["train/loss"]) == 3 and len(series["val/loss"]) == 3  # one value per epoch
    assert series["val/loss"][-1] < series["val/loss"][0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_mse"] == pytest.approx(series["val/loss"][-1], rel=1e-4)  # same model, same split
    assert 0 < metrics["test_mse"] < 4 and metrics["test_nmse"] > 0
    assert (out / "reconstructions.png").exists() and list((out / "samples").glob("step_*.png"))


def test_gnn_with_two_features_reads_two_columns(make_cfg):

    cfg = make_cfg(["experiment=shapes_gnn", "data.num_features=2", *TINY])
    dm, model = instantiate(cfg.data), instantiate(cfg.model)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["attributes"].shape[1] == 2 and model.decoder.in_features == 2
    assert model.predict(batch).shape == batch["image"].shape
    preview = model.preview(batch)  # real and predicted interleaved
    assert torch.equal(preview[0], batch["image"][0]) and preview.shape[0] == batch["image"].shape[0]


def test_autoencoder_saves_features_and_checkpoint(ae_run):
    saved = torch.load(ae_run / "features.pt", weights_only=False)
    assert saved["bottleneck"] == 100
    for split, n in zip(("train", "val", "test"), (96, 32, 32)):
        part = saved["splits"][split]
        assert part["code"].shape == (n, 100) and part["attributes"].shape == (n, 5)
        assert part["targets"].shape == (n, 4)
    # the saved codes are what the checkpoint's encoder gives
    model, dm, _ = load_checkpoint(str(ae_run / "checkpoints" / "last.ckpt"))
    model.eval()
    dm.setup()
    images = torch.stack([dm.val_set[i]["image"] for i in range(4)])
    with torch.no_grad():
        assert torch.allclose(model.autoencoder.encoder(images), saved["splits"]["val"]["code"][:4], atol=1e-5)
    assert json.loads((ae_run / "metrics.json").read_text())["test_mse"] > 0


def test_gnn_from_ae_uses_the_frozen_encoder(ae_run, make_cfg, tmp_path):
    ckpt = ae_run / "checkpoints" / "last.ckpt"
    ae_encoder = {k[len("autoencoder.encoder."):]: v for k, v in
                  torch.load(ckpt, weights_only=False)["state_dict"].items() if k.startswith("autoencoder.encoder.")}
    out = tmp_path / "from_ae"
    cfg = make_cfg(["experiment=shapes_gnn_from_ae", f"model.ae_ckpt={ckpt}", "trainer.max_epochs=1",
                    "model.width=8", *TINY], out=out)
    train(cfg)
    model, _, _ = load_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    assert model.decoder.in_features == 100
    for k, v in model.encoder.state_dict().items():  # not trained: weights and BN statistics as the AE's
        assert torch.equal(v, ae_encoder[k]), k
    # evaluate.py rebuilds it from the checkpoint alone
    eval_out = tmp_path / "eval"
    metrics = evaluate(make_cfg([f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}"], name="evaluate", out=eval_out))
    assert metrics["test_mse"] > 0 and (eval_out / "metrics.json").exists()


def test_dcgan_generates_from_the_codes_of_real_images(ae_run, make_cfg, tmp_path):

    ckpt = ae_run / "checkpoints" / "last.ckpt"
    cfg = make_cfg(["experiment=shapes_dcgan_ae_features", f"model.ae_ckpt={ckpt}", "trainer.max_steps=3",
                    "model.ngf=8", "model.ndf=8", *TINY], out=tmp_path / "dcgan")
    assert cfg.model.allow_untrained_encoder is False
    train(cfg)
    model = instantiate(cfg.model).eval()
    dm = instantiate(cfg.data)
    dm.setup()
    images = torch.stack([dm.val_set[i]["image"] for i in range(4)])
    with torch.no_grad():
        a = model.generate({"image": images}, torch.rand(4, 100))
        b = model.generate({"image": images}, torch.rand(4, 100))
    assert torch.equal(a, b)  # the noise is ignored: the input is the image's code
    assert not torch.allclose(a[0], a[1])  # different images, different codes, different outputs
    # so no latent interpolation is drawn for it (its rows would repeat one image)
    assert model.uses_noise is False
    written = write_pictures(model, dm, cfg.eval, tmp_path / "pictures", a)
    assert [p.name for p in written] == ["samples.png"] and not (tmp_path / "pictures" / "interpolation.png").exists()


def test_missing_or_wrong_ae_checkpoint_errors(ae_run, make_cfg, tmp_path):

    cfg = make_cfg(["experiment=shapes_gnn_from_ae", *TINY])
    with pytest.raises(Exception, match=r"model.ae_ckpt=PATH"):
        instantiate(cfg.model)
    cfg = make_cfg(["experiment=shapes_dcgan_ae_features", f"model.ae_ckpt={tmp_path / 'nope.ckpt'}"])
    with pytest.raises(Exception, match="no such checkpoint"):
        instantiate(cfg.model)
    cfg = make_cfg(["experiment=shapes_dcgan_ae_features", f"model.ae_ckpt={ae_run / 'checkpoints' / 'last.ckpt'}",
                    "model.nz=5"])
    with pytest.raises(Exception, match="bottleneck is 100"):
        instantiate(cfg.model)
    cfg = make_cfg(["experiment=shapes_gnn_from_ae", f"model.ae_ckpt={ae_run / 'checkpoints' / 'last.ckpt'}",
                    "data.image_size=64"])
    with pytest.raises(Exception, match="same data settings"):
        instantiate(cfg.model)
    not_an_ae = tmp_path / "dcgan.ckpt"
    torch.save({"state_dict": {"generator.net.0.weight": torch.zeros(1)}, "hyper_parameters": {}}, not_an_ae)
    cfg = make_cfg(["experiment=shapes_dcgan_ae_features", f"model.ae_ckpt={not_an_ae}"])
    with pytest.raises(Exception, match="not an autoencoder checkpoint"):
        instantiate(cfg.model)


def test_normalised_error_is_one_for_the_mean_image_and_zero_for_the_truth(tmp_path):

    dm = ShapesDataModule(image_size=32, splits=(64, 16, 16), fill="filled")
    dm.setup()
    mean = torch.stack([dm.train_set[i]["image"] for i in range(64)]).mean(0)

    class Fixed(ReconstructionTask):
        def __init__(self, truth: bool):
            super().__init__(optimizer=None)
            self.truth = truth

        def predict(self, batch):
            return batch["image"].clone() if self.truth else mean.expand_as(batch["image"])

    eval_cfg = OmegaConf.create({"batch_size": 10})
    assert Fixed(False).evaluate(dm, eval_cfg, tmp_path)["test_nmse"] == pytest.approx(1.0, rel=1e-4)
    assert Fixed(True).evaluate(dm, eval_cfg, tmp_path)["test_nmse"] == 0.0


@pytest.mark.slow
def test_study_script_runs_end_to_end(tmp_path):
    """scripts/shapes_study.sh at a toy budget: every step runs and every report is written."""

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PY=sys.executable, GNN_EPOCHS="1", AE_EPOCHS="1", GAN_STEPS="2", OMP_NUM_THREADS="1",
               EXTRA="data.splits=[64,32,32] data.batch_size=32 eval.num_samples=32 eval.batch_size=32 "
               "trainer.log_every_n_steps=1")
    env.pop("MNIST_ROOT", None)
    done = subprocess.run(["bash", str(root / "scripts" / "shapes_study.sh"), str(tmp_path / "study")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name, runs in (("gnn", 12), ("autoencoder", 3), ("gnn_from_ae", 4), ("dcgan", 2)):
        report = (tmp_path / "study" / "report" / name / "report.md").read_text()
        assert f"{runs} run(s)" in report, name
        assert (tmp_path / "study" / "report" / name / "report_samples.png").exists()
    assert "## By data.num_features" in (tmp_path / "study" / "report" / "gnn" / "report.md").read_text()
    assert "fid" in (tmp_path / "study" / "report" / "dcgan" / "report.md").read_text()
