"""data=captioned_folder: your own captioned images, in the imagefolder and sidecar
layouts, train every text-to-image experiment with the photo datasets' evaluation."""
from __future__ import annotations

import json
import logging

import pytest

from t2i.data.any_folder import CaptionedFolder
from t2i.data.base import DatasetNotFoundError
from t2i.run import train
from tests.fixtures import captioned_folder as fx


def make(root, tmp_path, **kw) -> CaptionedFolder:
    dm = CaptionedFolder(root=str(root), cache_dir=str(tmp_path / "cache"), embedding_dim=16,
                         word2vec=dict(epochs=1), **kw)
    dm.setup()
    return dm


def all_captions(dm):
    return {c for split in (dm.train_set, dm.val_set, dm.test_set) for c in split.captions}


@pytest.mark.parametrize("csv_format", [False, True])
def test_imagefolder_reads_captions_and_counts_bad_records(tmp_path, caplog, csv_format):
    root = fx.write_imagefolder(tmp_path / "mine", csv_format=csv_format)
    with caplog.at_level(logging.WARNING, logger="t2i"):
        dm = make(root, tmp_path)
    n = len(fx.COLOURS) * len(fx.SHAPES) * 4
    assert sum(len(s) for s in (dm.train_set, dm.val_set, dm.test_set)) == n
    # three captions per image: a JSON list in the jsonl, repeated rows in the csv
    assert dm.train_set.count.tolist() == [3] * len(dm.train_set)
    assert "a red disc on grey" in all_captions(dm)
    s = dm.stats
    assert (s["image_not_found"], s["unreadable_image"], s["empty_caption"], s["skipped"]) == (1, 1, 1, 3)
    for name in ("missing.jpg", "broken.jpg", "silent.png"):  # named in the one warning
        assert name in caplog.text
    # 10% test, then 5% of the rest val, drawn among the 33 files (broken.jpg is known
    # unreadable only once decoded; split_seed 0 left it in train)
    assert (len(dm.test_set), len(dm.val_set)) == (round(0.1 * 33), round(0.05 * 30))
    assert dm.dataset_name == "mine"


def test_split_folders_and_caption_column(tmp_path):
    root = fx.write_imagefolder(tmp_path / "mine", splits=True, column="caption")
    with pytest.raises(ValueError, match="data.caption_column"):
        make(root, tmp_path)
    dm = make(root, tmp_path, caption_column="caption")
    n = len(fx.COLOURS) * len(fx.SHAPES) * 4
    assert len(dm.test_set) == n // 4  # test/ as given; val drawn from train/
    assert len(dm.val_set) >= 1 and len(dm.train_set) + len(dm.val_set) == n - n // 4


def test_sidecar_layout(tmp_path, caplog):
    root = fx.write_sidecar(tmp_path / "photos")
    with caplog.at_level(logging.WARNING, logger="t2i"):
        dm = make(root, tmp_path)
    assert sum(len(s) for s in (dm.train_set, dm.val_set, dm.test_set)) == len(fx.COLOURS) * len(fx.SHAPES) * 4
    assert dm.stats["no_caption_file"] == dm.stats["no_image_file"] == dm.stats["empty_caption"] == 1
    for name in fx.BAD_NAMES["sidecar"]:
        assert name in caplog.text
    assert dm.train_set.count.tolist() == [3] * len(dm.train_set)  # blank lines are not captions


def test_split_is_seeded_by_split_seed_not_the_run_seed(tmp_path):
    root = fx.write_sidecar(tmp_path / "photos")
    a, b = make(root, tmp_path, seed=0), make(root, tmp_path, seed=5)
    c = make(root, tmp_path, split_seed=1)
    assert a.test_set.captions == b.test_set.captions
    assert a.test_set.captions != c.test_set.captions


def test_empty_folder_says_which_layouts(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetNotFoundError, match="metadata.jsonl.*photo.txt"):
        make(tmp_path / "nothing", tmp_path)
    with pytest.raises(ValueError, match="data.layout"):
        CaptionedFolder(root=str(tmp_path), layout="zip")


TINY_GAN = ["data.embedding_dim=16", "data.word2vec.epochs=1", "data.batch_size=8", "data.image_size=32",
            "trainer.enable_progress_bar=false", "logger=csv", "eval.matching.steps=20", "eval.num_samples=16",
            "eval.kid_subset_size=5", "eval.r_precision_draws=2", "eval.num_captions=3", "eval.images_per_caption=2"]


@pytest.mark.parametrize("experiment", ["flowers_dfgan", "shapes_t2i", "flowers_t2i"])
def test_swaps_into_text_to_image_experiments_fast_dev_run(make_cfg, tmp_path, experiment):
    root = fx.write_imagefolder(tmp_path / "mine")
    cfg = make_cfg([f"experiment={experiment}", "data=captioned_folder", f"data.root={root}",
                    "model.ngf=4", "model.ndf=4", "trainer.fast_dev_run=true", *TINY_GAN])
    assert cfg.data._target_.endswith("CaptionedFolder") and cfg.model.channels == 3
    train(cfg)


def test_short_run_writes_metrics_and_captions_png(make_cfg, tmp_path):
    root = fx.write_sidecar(tmp_path / "photos", per_kind=6)
    run = tmp_path / "run"
    train(make_cfg(["experiment=shapes_t2i", "data=captioned_folder", f"data.root={root}", "model.ngf=4",
                    "model.ndf=4", "trainer.max_steps=3", "eval.every_n_steps=0", *TINY_GAN]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fid_feature_extractor"] == "domain:photos-matching"
    assert "generated" in metrics["fid_protocol"] and metrics["fid"] > 0
    assert (run / "captions.png").stat().st_size > 0 and (run / "samples.png").stat().st_size > 0
