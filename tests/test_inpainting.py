"""MSCOCO inpainting: both on-disk layouts, caption features, nets, losses, metrics,
evaluation from a checkpoint, and the captions on/off sweep."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from t2i.data.base import DatasetNotFoundError
from t2i.data.coco import COCOInpaintingDataModule
from t2i.data.coco_caption_features import build_bow_words, content_words
from t2i.evaluation.inpainting import evaluate_inpainting, reconstruction_metrics
from t2i.nets.inpainting import CentreDiscriminator, CNNAutoencoder, ContextEncoder, border_mean, centre_crop, hole_mask
from t2i.run import evaluate, train
from t2i.tasks.inpainting import ContextEncoderInpainting
from tests.conftest import ROOT, SHARED_DATA
from tests.fixtures import coco as coco_fixture
from tests.fixtures.coco import gradient_image


def make_dm(root, **kw) -> COCOInpaintingDataModule:
    kw = {"val_size": 2, "test_size": 2, "batch_size": 4, "cache_dir": Path(root) / "cache", **kw}
    return COCOInpaintingDataModule(root=str(root), **kw)


def collate(dataset, n=None):
    return torch.utils.data.default_collate([dataset[i] for i in range(n or len(dataset))])


def write_ift6266(root: Path, n_train: int = 8, n_val: int = 6, seed: int = 1) -> None:
    """The IFT6266 2017 layout: 64x64 JPEGs (some greyscale) in inpainting/train2014 and
    inpainting/val2014, captions in a Python-2 pickle {file stem: [captions]}, which has
    a key without an image and misses one image."""
    rng = np.random.default_rng(seed)
    base = root / "inpainting"
    captions = {}
    for split, n in (("train2014", n_train), ("val2014", n_val)):
        (base / split).mkdir(parents=True)
        for i in range(n):
            stem = f"COCO_{split}_{i:012d}"
            pixels = gradient_image(rng, (64, 64))
            image = Image.fromarray(pixels[..., 0], mode="L") if i == 1 else Image.fromarray(pixels)
            image.save(base / split / f"{stem}.jpg")
            if not (split == "train2014" and i == n - 1):  # the last training image has no captions
                captions[stem.encode()] = [f"{split} picture {i} of a dog".encode(), b"a dog on grass"]
    captions[b"COCO_val2014_000000999999"] = [b"an image that is not there"]
    with open(base / "dict_key_imgID_value_caps_train_and_valid.pkl", "wb") as f:
        pickle.dump(captions, f, protocol=2)


# ------------------------------------------------------------------------- data
def test_coco_layout_reads_skips_and_counts(tmp_path):
    expected = coco_fixture.write(tmp_path / "data")
    dm = make_dm(tmp_path / "data", captions="bow", fill="zeros")
    dm.setup()
    assert {k: dm.counts[k] for k in ("captions_without_image", "images_without_captions",
                                      "unreadable_images")} == {k: expected[k] for k in dm.counts}
    sizes = [len(s) for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert sizes[1:] == [2, 2] and sum(sizes) == expected["usable"]
    items = [s[i] for s in (dm.train_set, dm.val_set, dm.test_set) for i in range(len(s))]
    for item in items:
        image, masked = item["image"], item["masked"]
        assert image.shape == masked.shape == (3, 64, 64) and image.min() >= -1 and image.max() <= 1
        hole = hole_mask(64, 32)
        assert torch.equal(masked[:, ~hole], image[:, ~hole]) and (masked[:, hole] == 0).all()
        assert item["caption"] and item["caption_features"].shape == (1000,)
    # the greyscale JPEG became RGB with three equal channels
    assert sum(bool((it["image"][0] == it["image"][1]).all() and (it["image"][1] == it["image"][2]).all())
               for it in items) == 1


def test_splits_are_seeded_and_disjoint(tmp_path):
    coco_fixture.write(tmp_path / "data")
    splits = {}
    for seed in (0, 0, 1):
        dm = make_dm(tmp_path / "data", captions="none", seed=seed)
        dm.setup()
        split = [{s.images[i].tobytes() for i in range(len(s))} for s in (dm.train_set, dm.val_set, dm.test_set)]
        assert not (split[0] & split[1] or split[0] & split[2] or split[1] & split[2])
        splits.setdefault(seed, []).append(split)
    assert splits[0][0] == splits[0][1] and splits[0][0] != splits[1][0]


def test_uncaptioned_images_kept_on_request_and_mean_fill(tmp_path):
    expected = coco_fixture.write(tmp_path / "data")
    dm = make_dm(tmp_path / "data", captions="bow", require_captions=False, fill="mean")
    dm.setup()
    sets = (dm.train_set, dm.val_set, dm.test_set)
    assert sum(len(s) for s in sets) == expected["usable"] + 1
    uncaptioned = [s[i] for s in sets for i in range(len(s)) if s[i]["caption"] == ""]
    assert len(uncaptioned) == 1 and uncaptioned[0]["caption_features"].sum() == 0
    train = collate(dm.train_set)["image"]
    mean = train.mean((0, 2, 3))
    assert torch.allclose(dm.fill_value, mean, atol=2 / 255)
    assert torch.allclose(dm.train_set[0]["masked"][:, 32, 32], mean, atol=2 / 255)


def test_ift6266_layout(tmp_path):
    write_ift6266(tmp_path)
    dm = make_dm(tmp_path, captions="bow", val_size=3, test_size=3)
    dm.setup()
    assert dm.counts["images_without_captions"] == 1 and dm.counts["captions_without_image"] == 1
    assert len(dm.train_set) == 7 and len(dm.val_set) == 3 and len(dm.test_set) == 3
    assert all(c.startswith("train2014 picture") for c in dm.train_set.fields["caption"])
    held = dm.val_set.fields["caption"] + dm.test_set.fields["caption"]
    assert sorted(held) == sorted(f"val2014 picture {i} of a dog" for i in range(6))
    assert dm.train_set[0]["image"].shape == (3, 64, 64)


def test_missing_dataset_names_both_layouts(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="(?s)IFT6266.*COCO layout") as err:
        make_dm(tmp_path / "nothing").setup()
    assert "captions_val2014.json" in str(err.value) and "dict_key_imgID" in str(err.value)
    (tmp_path / "coco" / "val2014").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="annotations/captions_val2014.json"):
        make_dm(tmp_path / "coco").setup()


@pytest.mark.parametrize("kw, message", [({"captions": "glove"}, "captions"), ({"fill": "noise"}, "fill"),
                                         ({"hole_size": 31}, "hole_size"), ({"layout": "flickr"}, "layout")])
def test_bad_settings_fail_fast(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        make_dm(tmp_path, **kw).setup()


# ------------------------------------------------------------ caption features
def test_bag_of_words_is_content_words_by_document_frequency():
    captions = [["A dog on the grass.", "The dog runs"], ["A cat on a sofa"], ["dog and cat", "3 dogs, a b c"]]
    words = build_bow_words(captions, bow_size=3)
    assert words == ["cat", "dog", "dogs"]  # dog: 2 images, cat: 2, then ties alphabetically
    assert content_words(["the", "a", "dog", "on", "3", "x"]) == ["dog"]


def test_caption_features_and_checkpoint_state(tmp_path):
    coco_fixture.write(tmp_path / "data")
    for mode, dim in (("bow", 1000), ("word2vec", 100)):
        dm = make_dm(tmp_path / "data", captions=mode)
        dm.setup()
        feats = dm.train_set.fields["caption_features"]
        assert feats.shape == (len(dm.train_set), dim) and feats.abs().sum(1).min() > 0
        if mode == "bow":
            assert set(feats.unique().tolist()) == {0.0, 1.0}
            words = dm.text_state["bow_words"]
            assert "bus" in words and not {"a", "the", "on", "of"} & set(words)
        # a data module restored from a checkpoint featurises exactly as training did
        other = make_dm(tmp_path / "data", captions=mode)
        other.load_state_dict(dm.state_dict())
        other.setup()
        assert torch.equal(other.test_set.fields["caption_features"], dm.test_set.fields["caption_features"])
        assert torch.equal(other.fill_value, dm.fill_value)


# ------------------------------------------------------------------------- nets
def test_nets_shapes_and_fresh_residual_net_is_the_border_mean_fill():
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    text = torch.randn(4, 20)
    for net, size in ((CNNAutoencoder(width=8, text_dim=20), 32), (ContextEncoder(nef=8, ngf=8, bottleneck=16,
                                                                                   text_dim=20), 40)):
        out = net.eval()(x, text)
        assert out.shape == (4, 3, size, size)
        assert torch.allclose(out, border_mean(x, 32).clamp(-0.99, 0.99).expand_as(out), atol=1e-5)
        with torch.no_grad():  # once trained (here: perturbed), the caption changes the centre
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        assert not torch.allclose(net(x, text), net(x, torch.randn(4, 20)))
        with pytest.raises(ValueError, match="caption features"):
            net(x)
    assert CentreDiscriminator(ndf=8, text_dim=20)(centre_crop(x, 32), text).shape == (4,)
    with pytest.raises(ValueError, match="divisible by 8"):
        ContextEncoder(overlap=2)


def test_context_encoder_loss_weights_overlap_ring():
    model = ContextEncoderInpainting(nef=8, ngf=8, ndf=8, bottleneck=16, wtl2=1.0, overlap_pred=4, overlap_weight=10,
                                     optimizer_g=None, optimizer_d=None)
    image = torch.zeros(2, 3, 64, 64)
    batch = {"image": image, "masked": image}
    target = centre_crop(image, 40)
    centre_error, ring_error = target.clone(), target.clone()
    centre_error[..., 4:36, 4:36] += 0.1  # 1024 pixels of the 32x32 centre
    ring_error[..., :4, :] += 0.1  # 160 pixels of the 4-pixel ring
    centre_loss, _ = model.generator_loss(batch, centre_error)
    ring_loss, _ = model.generator_loss(batch, ring_error)
    assert torch.isclose(ring_loss / centre_loss, torch.tensor(10 * 160 / 1024), rtol=1e-4)


# ---------------------------------------------------------------------- metrics
def test_reconstruction_metrics():
    target = torch.rand(6, 3, 32, 32) * 1.6 - 0.8
    m = reconstruction_metrics(target + 0.2, target)  # 0.1 off in [0, 1]: MSE 0.01, PSNR 20 dB
    assert m["psnr_centre"] == pytest.approx(20.0, abs=1e-3) and m["l1_centre"] == pytest.approx(0.1, abs=1e-5)
    assert m["l2_centre"] == pytest.approx(0.01, abs=1e-6)
    assert reconstruction_metrics(target, target)["ssim_centre"] == pytest.approx(1.0, abs=1e-4)
    blurred = torch.nn.functional.avg_pool2d(target, 3, 1, 1, count_include_pad=False)
    assert reconstruction_metrics(blurred, target)["sharpness_ratio_centre"] < 0.7
    with pytest.raises(ValueError):
        reconstruction_metrics(target, target[:2])


def test_evaluation_contract_and_picture(tmp_path):
    coco_fixture.write(tmp_path / "data")
    dm = make_dm(tmp_path / "data", captions="bow", test_size=4)
    model = ContextEncoderInpainting(nef=8, ngf=8, ndf=8, bottleneck=16, captions="bow", optimizer_g=None,
                                     optimizer_d=None)
    eval_cfg = OmegaConf.create({"num_samples": 100, "batch_size": 3, "inception_weights": None})
    metrics = evaluate_inpainting(model, dm, eval_cfg, tmp_path / "eval")
    for key in ("l1_centre", "l2_centre", "psnr_centre", "ssim_centre", "psnr_centre_baseline"):
        assert isinstance(metrics[key], float) and np.isfinite(metrics[key])
    assert metrics["fid"] is None and "inception_weights" in metrics["fid_note"]
    assert metrics["num_test_images"] == 4
    # a fresh residual net paints the trivial fill: it scores the baseline
    assert metrics["psnr_centre"] == pytest.approx(metrics["psnr_centre_baseline"], abs=0.05)
    json.dumps(metrics)
    picture = Image.open(tmp_path / "eval" / "inpainting.png")
    assert picture.width == 3 * 128 + 4 * 6 and picture.height > 4 * 128


# ------------------------------------------------------------ training and runs
def test_context_encoder_learns_to_beat_the_baseline(make_cfg, tmp_path):
    """Smooth colour ramps: the border's mean colour is a poor fill, extrapolating the
    border is a good one. A short training must find it on unseen test images."""
    coco_fixture.write(tmp_path / "data", n=40)
    cfg = make_cfg(["experiment=coco_context_encoder", f"data.root={tmp_path / 'data'}", "data.captions=none",
                    "data.val_size=2", "data.test_size=10", "data.batch_size=8", "model.nef=16", "model.ngf=16",
                    "model.ndf=16", "model.bottleneck=64", "trainer.max_steps=80", "~logger",
                    "callbacks.sample_grid.every_n_steps=1000", "trainer.enable_progress_bar=false"])
    metrics = train(cfg)
    assert metrics["psnr_centre"] > metrics["psnr_centre_baseline"] + 1.0
    assert (Path(cfg.paths.output_dir) / "inpainting.png").exists()

    # evaluate.py from the checkpoint alone gives the same numbers
    eval_cfg = make_cfg([f"ckpt_path={cfg.paths.output_dir}/checkpoints/last.ckpt", "device=cpu"], name="evaluate",
                        out=tmp_path / "eval")
    again = evaluate(eval_cfg)
    assert again["psnr_centre"] == pytest.approx(metrics["psnr_centre"], abs=1e-4)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["psnr_centre_baseline"] == pytest.approx(
        metrics["psnr_centre_baseline"])


def test_autoencoder_trains_with_validation_loss_and_early_stopping(make_cfg, tmp_path):
    coco_fixture.write(tmp_path / "data")
    # an impossible min_delta: no validation counts as an improvement, so training stops
    # after the first validation plus `patience` more, long before max_steps
    cfg = make_cfg(["experiment=coco_cnn_ae", f"data.root={tmp_path / 'data'}", "data.captions=word2vec",
                    *coco_fixture.OVERRIDES, "model.width=8", "trainer.max_steps=60", "trainer.val_check_interval=2",
                    "callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=1000", "~logger",
                    "trainer.enable_progress_bar=false"])
    assert cfg.callbacks.early_stopping.monitor == "val/loss"
    metrics = train(cfg)
    assert np.isfinite(metrics["val/loss"]) and metrics["captions"] == "word2vec"
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] < 10


@pytest.mark.slow
def test_caption_sweep_multirun(tmp_path):
    """python train.py -m experiment=coco_context_encoder data.captions=none,bow,word2vec"""
    coco_fixture.write(tmp_path / "data")
    cmd = [sys.executable, "train.py", "-m", "experiment=coco_context_encoder", "data.captions=none,bow,word2vec",
           f"data.root={tmp_path / 'data'}", *coco_fixture.OVERRIDES, f"paths.cache_dir={tmp_path / 'cache'}",
           f"hydra.sweep.dir={tmp_path / 'sweep'}", "trainer.max_steps=2", "model.nef=8", "model.ngf=8",
           "model.ndf=8", "model.bottleneck=16", "~logger", "trainer.enable_progress_bar=false"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for job, mode in enumerate(("none", "bow", "word2vec")):
        metrics = json.loads((tmp_path / "sweep" / str(job) / "metrics.json").read_text())
        assert metrics["captions"] == mode and np.isfinite(metrics["psnr_centre"])


@pytest.mark.skipif(not (SHARED_DATA / "coco" / "val2014").is_dir(), reason="../shared/data/coco not present")
def test_real_coco_sample(tmp_path):
    dm = COCOInpaintingDataModule(root=str(SHARED_DATA / "coco"), cache_dir=tmp_path, captions="bow", val_size=1,
                                  test_size=1)
    dm.setup()
    assert sum(len(s) for s in (dm.train_set, dm.val_set, dm.test_set)) == 10
    assert dm.counts["images_without_captions"] == 79 and dm.counts["unreadable_images"] == 0
    item = dm.train_set[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].std() > 0.05 and item["caption"]
