"""The evaluation package: the matching evaluator and R-precision, precision/recall,
the protocol string, cached references, the in-training monitor and best.ckpt."""
import csv
import json
import logging
from types import SimpleNamespace

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from t2i.callbacks.eval_monitor import EvalMonitor
from t2i.data.batches import eval_batches, split_images, spread_indices
from t2i.data.synthetic import scenes
from t2i.evaluation.matching import (
    batch_rows,
    class_oracle_r_precision,
    matching_evaluator,
    r_precision,
)
from t2i.evaluation.matching_nets import ColourHistogram
from t2i.evaluation.scores import feature_metrics, image_quality, reference_split
from t2i.run import evaluate, train
from tests.conftest import data_config

TINY_DCGAN = ["experiment=shapes_dcgan", "data.splits=[512,64,64]", "data.image_size=32", "model.ngf=8", "model.ndf=8",
              "trainer.enable_progress_bar=false", "logger=csv", "eval.monitor_samples=64", "eval.num_samples=64",
              "eval.kid_subset_size=32", "callbacks.sample_grid.every_n_steps=1000", "eval.every_n_steps=0"]


# ------------------------------------------------------------ R-precision
def test_r_precision_of_perfect_and_random_embeddings():
    n = 300
    captions = [f"caption number {i}" for i in range(n)]
    text = torch.nn.functional.normalize(torch.randn(n, 32), dim=1)
    assert r_precision(text, text, captions, draws=3) == (1.0, 0.0)  # each image is its caption's twin
    noise = torch.nn.functional.normalize(torch.randn(n, 32), dim=1)
    mean, std = r_precision(noise, text, captions, draws=5)
    assert mean < 0.05 and std >= 0  # chance is 1 in 100


def test_r_precision_needs_100_distinct_captions():
    captions = [f"a {c} thing" for c in ("red", "blue")] * 100  # 200 items, 2 distinct captions
    emb = torch.randn(200, 8)
    with pytest.raises(ValueError, match="got 2 distinct captions in 200 items"):
        r_precision(emb, emb, captions)


def test_identical_captions_are_never_distractors():
    """Two items with the same text: ranking one above the other is no error."""
    captions = ["the same words"] * 2 + [f"other {i}" for i in range(120)]
    text = torch.nn.functional.normalize(torch.randn(122, 16), dim=1)
    text[1] = text[0]
    image = text.clone()
    image[0] = text[0] * 0.5 + text[1] * 0.5
    assert r_precision(image, text, captions, draws=2)[0] == 1.0


# ---------------------------------------------------- the matching evaluator
@pytest.fixture(scope="module")
def scenes_datamodule(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    scenes.write(root, sizes=(400, 110, 120))
    cfg = data_config("flickr")
    cfg.root, cfg.image_size, cfg.embedding_dim, cfg.seed = str(root), 32, 16, 0
    cfg.cache_dir = str(root / "cache")
    cfg.word2vec.epochs = 1
    dm = hydra.utils.instantiate(cfg)
    dm.setup("fit")
    return dm


def test_matching_evaluator_ranks_real_images_far_above_the_floor(scenes_datamodule, tmp_path, caplog):
    dm = scenes_datamodule
    settings = {"steps": 50, "batch_size": 64}
    with caplog.at_level(logging.INFO, logger="t2i"):
        evaluator, report = matching_evaluator(dm, tmp_path, settings)
    assert "training the text-image matching evaluator" in caplog.text
    assert report["matching_heldout_r_precision"] > 10 * max(0.01, report["matching_heldout_r_precision_shuffled"])
    test = dm.test_set.__getitems__(list(range(len(dm.test_set))))
    text = evaluator.embed_texts(test["token_ids"], test["length"])
    real, _ = r_precision(evaluator.embed_images(test["image"]), text, test["caption"], draws=5)
    noise, _ = r_precision(evaluator.embed_images(torch.rand_like(test["image"]) * 2 - 1), text, test["caption"],
                           draws=5)
    assert real > 0.3 and noise < 0.05, (real, noise)
    # cached: loaded, not retrained; other settings: a separate evaluator
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="t2i"):
        _, again = matching_evaluator(dm, tmp_path, settings)
    assert again == report and "training the" not in caplog.text
    matching_evaluator(dm, tmp_path, {"steps": 2, "batch_size": 16})
    assert len(list((tmp_path / "matching").glob("*.pt"))) == 2


def test_unknown_matching_setting_is_an_error_naming_it(scenes_datamodule, tmp_path):
    """A misspelt eval.matching key must not silently train the default evaluator."""
    with pytest.raises(ValueError, match=r"unknown key eval.matching.step\. Valid keys of eval.matching: .*\bsteps\b"
                       ) as err:
        matching_evaluator(scenes_datamodule, tmp_path, {"step": 50, "batch_size": 64})
    assert "cpu_threads" in str(err.value) and "augment" in str(err.value)
    assert not (tmp_path / "matching").exists()  # nothing trained or cached


def test_class_oracle_is_capped_by_the_same_class_distractors():
    captions = [f"caption {i}" for i in range(1000)]
    assert class_oracle_r_precision(torch.arange(1000), captions, draws=2) == 1.0  # every class alone
    # 10 classes of 100: ~9.8 of 99 distractors share the class, so ~E[1 / (1 + m)] ~ 0.1
    assert 0.07 < class_oracle_r_precision(torch.arange(1000) % 10, captions, draws=3) < 0.13


def test_same_class_batches_hold_k_images_of_each_class():
    labels = torch.arange(40).repeat_interleave(10)[torch.randperm(400, generator=torch.Generator().manual_seed(1))]
    rows = batch_rows(400, 64, torch.Generator().manual_seed(0), labels, same_class=4)
    counts = torch.bincount(labels[rows], minlength=40)
    assert len(rows) == 64 and len(rows.unique()) == 64
    assert sorted(counts[counts > 0].tolist()) == [4] * 16  # 16 classes, 4 images each
    plain = batch_rows(400, 64, torch.Generator().manual_seed(0))
    assert torch.equal(plain, torch.randperm(400, generator=torch.Generator().manual_seed(0))[:64])


def test_colour_histogram_is_a_share_of_pixels_that_tells_colours_apart():
    hist = ColourHistogram(3, bins=8).eval()
    red, blue = torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16)
    red[:, 0], blue[:, 2] = 1.0, 1.0
    share = hist.pixel(red).softmax(1).mean((2, 3))
    assert torch.allclose(share.sum(1), torch.ones(2))  # a histogram: the shares sum to 1
    assert not torch.allclose(hist(red), hist(blue))
    centre_only = blue.clone()
    centre_only[..., 4:12, 4:12] = red[..., 4:12, 4:12]  # same centre as red, a blue border
    out = hist(torch.cat([red, centre_only]))
    half = hist.num_features // 2
    assert torch.allclose(out[:2, half:], out[2:, half:], atol=1e-5)  # the centre half reads the centre only
    assert not torch.allclose(out[:2, :half], out[2:, :half])


def test_matching_evaluator_with_colour_and_same_class_trains_and_scores(scenes_datamodule, tmp_path):
    settings = {"steps": 30, "batch_size": 64, "colour": True, "tower": "residual"}
    evaluator, report = matching_evaluator(scenes_datamodule, tmp_path, settings)
    assert evaluator.image.colour is not None and report["matching_heldout_r_precision"] is not None
    images = scenes_datamodule.test_set.__getitems__(list(range(8)))["image"]
    assert evaluator.image_features(images).shape == (8, evaluator.num_features)
    with pytest.raises(ValueError, match="same_class=4 needs class labels"):  # scenes have none
        matching_evaluator(scenes_datamodule, tmp_path, {"steps": 2, "same_class": 4})


# ------------------------------------------------------------ the numbers
def test_precision_recall_fid_from_features():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=g)
    same = feature_metrics(torch.randn(500, 8, generator=g), real)
    far = feature_metrics(torch.randn(500, 8, generator=g) + 6, real)
    narrow = feature_metrics(torch.randn(500, 8, generator=g) * 0.2, real)  # mode collapse: precise, no recall
    assert same["precision"] > 0.8 and same["recall"] > 0.8 and same["fid"] < 1
    assert far["precision"] < 0.05 and far["recall"] < 0.05 and far["fid"] > 100
    assert narrow["precision"] > 0.9 and narrow["recall"] < 0.3


def test_evaluation_items_spread_over_a_class_sorted_split():
    test = [{"image": torch.full((1, 4, 4), float(i // 25)), "label": i // 25} for i in range(100)]  # 4 classes
    dm = SimpleNamespace(train_set=test, val_set=test, test_set=test, collate_fn=None)
    labels = torch.cat([b["label"] for b in eval_batches(dm, 8, 3)])
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # every class, not the first 8 items of class 0
    assert split_images(dm, "test", 8)[:, 0, 0, 0].tolist() == labels.float().tolist()  # the same items
    assert spread_indices(5, 10) == [0, 1, 2, 3, 4]  # n >= size: the whole split, in order


def test_protocol_and_cached_reference(make_cfg, tmp_path):
    cfg = make_cfg(TINY_DCGAN)
    dm = hydra.utils.instantiate(cfg.data)
    fake = torch.rand(48, 1, 32, 32) * 2 - 1
    metrics = image_quality(fake, dm, cfg.eval, cfg.paths.cache_dir)
    assert metrics["fid_protocol"] == "domain:shapes | 48 generated (from test conditioning) vs 48 real test images"
    assert metrics["num_reference"] == 48 and metrics["fid_reference_split"] == "test"
    cached = list((tmp_path / "cache" / "reference").glob("*.pt"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert image_quality(fake, dm, cfg.eval, cfg.paths.cache_dir)["fid"] == metrics["fid"]
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not recomputed
    train_ref = image_quality(fake, dm, OmegaConf.merge(cfg.eval, {"reference_split": "train"}), cfg.paths.cache_dir)
    assert "48 real train images" in train_ref["fid_protocol"]
    assert len(list((tmp_path / "cache" / "reference").glob("*.pt"))) == 2
    with pytest.raises(ValueError, match="reference_split"):
        image_quality(fake, dm, OmegaConf.merge(cfg.eval, {"reference_split": "everything"}), cfg.paths.cache_dir)


def test_reference_split_accepts_what_its_message_says(make_cfg):
    """eval.reference_split is train|test everywhere (config checks, conf/eval/default.yaml,
    this function's message); val is the in-training monitor's reference, not a choice."""
    cfg = make_cfg(TINY_DCGAN)
    assert [reference_split(OmegaConf.create({"reference_split": s})) for s in ("train", "test")] == ["train", "test"]
    with pytest.raises(ValueError, match=r"eval.reference_split='val' is not allowed: one of train, test"):
        reference_split(OmegaConf.merge(cfg.eval, {"reference_split": "val"}))


# ------------------------------------------------- the monitor and best.ckpt
def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_monitor_logs_val_fid_and_keeps_best_checkpoint(make_cfg, tmp_path, caplog):
    cfg = make_cfg(TINY_DCGAN + ["eval.every_n_steps=2", "trainer.max_steps=7"])
    with caplog.at_level(logging.INFO):
        train(cfg)
    # saving best.ckpt says what it saves: no Lightning line about an unset `weights_only`
    assert not [r for r in caplog.records if "weights_only" in r.getMessage()]
    run = tmp_path / "run"
    rows = [r for r in _rows(run / "csv" / "metrics.csv") if r.get("val/fid")]
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 7]  # the last weights are scored too
    assert all(0 <= float(r["val/precision"]) <= 1 and 0 <= float(r["val/recall"]) <= 1 for r in rows)
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    state = best["callbacks"]["EvalMonitor"]
    assert state["best_score"] == min(float(r["val/fid"]) for r in rows)
    assert best["global_step"] == state["best_step"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["checkpoint"] == "best" and metrics["step"] == state["best_step"]
    assert metrics["fid_protocol"].endswith("64 generated (from test conditioning) vs 64 real test images")
    # resume: the best score travels in last.ckpt, so a worse later score does not replace best.ckpt
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["callbacks"]["EvalMonitor"] == state  # written after the final score
    assert state["best_score"] == min(float(r["val/fid"]) for r in rows)  # step 7's included
    train(make_cfg(TINY_DCGAN + ["eval.every_n_steps=2", "trainer.max_steps=8", "ckpt_path=last"]))
    rows = [r for r in _rows(run / "csv" / "metrics.csv") if r.get("val/fid")]
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 7, 8]
    resumed = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert resumed["callbacks"]["EvalMonitor"]["best_score"] == min(float(r["val/fid"]) for r in rows)


def test_without_monitor_evaluation_names_last(make_cfg, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="t2i"):
        train(make_cfg(TINY_DCGAN + ["trainer.max_steps=2", "evaluate_after_fit=true"]))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["checkpoint"] == "last" and metrics["step"] == 2
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    assert "no best.ckpt" in caplog.text
    for picture in ("samples.png", "interpolation.png"):
        assert (tmp_path / "run" / picture).stat().st_size > 0


def test_evaluate_missing_best_falls_back_to_last(make_cfg, tmp_path, caplog):
    train(make_cfg(TINY_DCGAN + ["trainer.max_steps=2"]))
    cfg = make_cfg([f"ckpt_path={tmp_path / 'run/checkpoints/best.ckpt'}", "eval.num_samples=48",
                    "eval.kid_subset_size=20"], name="evaluate", out=tmp_path / "eval")
    with caplog.at_level(logging.WARNING, logger="t2i"):
        metrics = evaluate(cfg)
    assert "evaluating last.ckpt instead" in caplog.text
    assert metrics["checkpoint"] == "last" and metrics["step"] == 2


def test_text_to_image_best_checkpoint_follows_alignment_not_fid(make_cfg, tmp_path):
    """eval.best_by=auto on captioned shapes keeps the best val/alignment_accuracy (ties: the
    higher val/precision, the experiment's eval.best_by_tie_break; full ties: the earlier), not
    the best val/fid; an explicit eval.best_by=val/fid still works."""
    tiny = ["experiment=shapes_gan_cls", "data.splits=[256,64,64]", "data.embedding_dim=16", "data.word2vec.epochs=2",
            "model.ngf=8", "model.ndf=8", "trainer.enable_progress_bar=false", "logger=csv",
            "eval.monitor_samples=64", "eval.num_samples=64", "eval.kid_subset_size=32", "eval.every_n_steps=1",
            "trainer.max_steps=5", "callbacks.sample_grid.every_n_steps=1000", "eval.best_by_tie=0"]
    for best_by, out in (("auto", "auto"), ("val/fid", "fid")):
        train(make_cfg(tiny + [f"eval.best_by={best_by}"], out=tmp_path / out))
        rows = [r for r in _rows(tmp_path / out / "csv" / "metrics.csv") if r.get("val/fid")]
        scored = [(float(r["val/alignment_accuracy"]), float(r["val/precision"]), -int(r["step"])) for r in rows]
        state = torch.load(tmp_path / out / "checkpoints" / "best.ckpt", map_location="cpu",
                           weights_only=False)["callbacks"]["EvalMonitor"]
        if best_by == "auto":
            assert state["best_by"] == "alignment_accuracy"
            assert state["best_step"] == -max(scored)[2]
        else:
            assert state["best_by"] == "fid"
            assert state["best_step"] == min((float(r["val/fid"]), int(r["step"])) for r in rows)[1]


def test_alignment_within_the_tie_goes_to_the_lower_fid():
    """eval.best_by_tie=0.01: an alignment within 0.01 of the best seen is a tie, kept when its
    FID is lower; below the band it never wins; a new top beyond the band always does."""
    monitor = EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by": "val/alignment_accuracy",
                                            "best_by_tie": 0.01}), "/tmp")
    runs = [(0.900, 50.0), (0.992, 21.0), (0.980, 18.0), (0.986, 21.4), (0.983, 15.9), (0.975, 10.0), (1.0, 30.0)]
    kept = [monitor.consider("alignment_accuracy", {"alignment_accuracy": a, "fid": f}, step)
            for step, (a, f) in enumerate(runs)]
    assert kept == [True, True, False, False, True, False, True] and monitor.best_step == 6
    exact = EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by": "val/alignment_accuracy",
                                          "best_by_tie": 0}), "/tmp")
    for step, (a, f) in enumerate(runs[:5]):
        exact.consider("alignment_accuracy", {"alignment_accuracy": a, "fid": f}, step)
    assert exact.best_step == 1
    with pytest.raises(ValueError, match="best_by_tie"):
        EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by_tie": -1}), "/tmp")


def test_alignment_ties_broken_by_the_higher_precision():
    monitor = EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by": "val/alignment_accuracy",
                                            "best_by_tie": 0.01, "best_by_tie_break": "val/precision"}), "/tmp")
    # (alignment, fid, precision): step 2 has the lower FID, step 3 the higher precision, in the band
    runs = [(0.986, 20.1, 0.70), (0.987, 21.4, 0.76), (0.993, 20.4, 0.74), (0.990, 25.0, 0.80), (0.970, 30.0, 0.95)]
    for step, (a, f, p) in enumerate(runs):
        monitor.consider("alignment_accuracy", {"alignment_accuracy": a, "fid": f, "precision": p}, step)
    assert monitor.best_step == 3  # 0.95 at step 4 is out of the band (0.970 < 0.993 - 0.01)
    resumed = EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by": "val/alignment_accuracy",
                                            "best_by_tie_break": "val/precision"}), "/tmp")
    resumed.load_state_dict(monitor.state_dict())
    assert (resumed.best_step, resumed.best_second) == (3, 0.80)
    with pytest.raises(ValueError, match="best_by_tie_break"):
        EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by_tie_break": "val/recall"}), "/tmp")


def test_best_by_rejects_unknown_metric():
    with pytest.raises(ValueError, match="val/alignment_accuracy"):
        EvalMonitor(OmegaConf.create({"every_n_steps": 1, "best_by": "val/beauty"}), "/tmp")
