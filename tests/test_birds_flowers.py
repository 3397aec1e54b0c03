"""CUB-200 birds and Oxford-102 flowers readers on tiny files written in each real
layout (quirks included), and on the real samples in ../shared/data when present."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from t2i.data import cache as cache_mod
from t2i.data.base import DatasetNotFoundError
from t2i.data.cache import object_crop
from t2i.data.cub import CUBCaptions
from t2i.data.flowers import FlowersCaptions
from t2i.data.synthetic import flower_field
from t2i.evaluation.matching import dataset_name
from tests.conftest import SHARED_DATA
from tests.fixtures import cub as cub_fx
from tests.fixtures import flowers as flowers_fx

W2V = dict(epochs=1)  # tiny corpora: the vectors' quality is not what these tests check


def make(cls, root: Path, tmp_path: Path, **kw):
    kw = {"embedding_dim": 8, "word2vec": W2V, "batch_size": 4, "cache_workers": 1, **kw}
    return cls(root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def labels(dataset) -> set[int]:
    return set(dataset.fields["label"].tolist())


def class_label(folder: str) -> int:
    return int(folder[:3]) - 1


@pytest.fixture
def cub_root(tmp_path) -> Path:
    cub_fx.write(tmp_path / "cub")
    return tmp_path / "cub"


@pytest.fixture
def flowers_root(tmp_path) -> Path:
    flowers_fx.write(tmp_path / "flowers")
    return tmp_path / "flowers"


# ------------------------------------------------------------------ CUB
def test_cub_reed_layout_class_disjoint_with_quirks_counted(cub_root, tmp_path, caplog):
    dm = make(CUBCaptions, cub_root, tmp_path)
    with caplog.at_level(logging.INFO, logger="t2i"):
        dm.setup()
    test_labels = {class_label(c) for c in cub_fx.TEST_CLASSES}
    assert labels(dm.test_set) == test_labels
    assert not (labels(dm.train_set) | labels(dm.val_set)) & test_labels  # no test class in training
    # 7 classes x 5 birds: 10 test birds; 19 train+val JPEGs on disk, less the corrupt one and the empty captions
    assert len(dm.test_set) == 10
    assert len(dm.train_set) + len(dm.val_set) == 17 and len(dm.val_set) == 1
    stats = dm.stats
    assert stats["images_missing"] == cub_fx.PER_CLASS + 1  # the class without images + one absent JPEG
    assert stats["images_unreadable"] == 1 and stats["empty_caption_files"] == 1
    assert stats["captions_without_image"] == 10 * (cub_fx.PER_CLASS + 2)
    assert stats["images_in_no_split"] == 0  # "002.Green_Jays" in Reed's lists is the folder 002.Green_Jay
    assert "70 captions skipped (6 images missing, 1 unreadable), 1 empty caption files skipped" in caplog.text
    assert "reed layout" in caplog.text and "Reed's class split" in caplog.text
    assert dm.train_set.count.tolist() == [10] * len(dm.train_set)  # ten captions each, one drawn per epoch


def test_dataset_names_label_the_matching_space():

    assert dataset_name(CUBCaptions(root="x")) == "cub" and dataset_name(FlowersCaptions(root="x")) == "flowers"


def test_cub_201_character_line_is_kept_and_truncated_to_max_words(cub_root, tmp_path):
    dm = make(CUBCaptions, cub_root, tmp_path, max_words=12)
    dm.setup()
    sets = [dm.train_set, dm.val_set, dm.test_set]
    long = [(ds, i) for ds in sets for i, c in enumerate(ds.captions) if c == cub_fx.LONG_LINE]
    assert long, "the 201-character caption line was lost"
    ds, i = long[0]
    assert len(cub_fx.LONG_LINE) == 201 and int(ds.lengths[i]) == 12


def test_cub_caption_folder_spelled_unlike_the_image_folder(cub_root, tmp_path):
    (cub_root / "text_c10" / "002.Green_Jay").rename(cub_root / "text_c10" / "002.Green_Jays")
    dm = make(CUBCaptions, cub_root, tmp_path)
    dm.setup()
    assert dm.stats["images_missing"] == cub_fx.PER_CLASS + 1  # Green_Jay's birds still found
    assert 1 in labels(dm.train_set) | labels(dm.val_set)


def test_cub_reed_val_classes(cub_root, tmp_path):
    dm = make(CUBCaptions, cub_root, tmp_path, val_split="classes")
    dm.setup()
    assert labels(dm.val_set) == {class_label(c) for c in cub_fx.VAL_CLASSES}
    # train: Reed's train classes with images (005 has none), val's classes never trained on
    assert labels(dm.train_set) == {class_label(c) for c in cub_fx.TRAIN_CLASSES if c != cub_fx.NO_IMAGES}
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (9, 8, 10)


def test_cub_caltech_image_split(cub_root, tmp_path):
    dm = make(CUBCaptions, cub_root, tmp_path, split="images")
    dm.setup()
    assert labels(dm.train_set) & labels(dm.test_set)  # classes shared: Caltech's split is by image
    # train_test_split.txt: odd ids train. Test: even ids, less missing/corrupt/empty ones among them
    keys = [key for _, key in cub_fx.image_keys()]
    bad = {cub_fx.MISSING, cub_fx.CORRUPT, cub_fx.EMPTY_CAPTIONS} | {k for c, k in cub_fx.image_keys()
                                                                    if c == cub_fx.NO_IMAGES}
    expected_test = [k for i, k in enumerate(keys, start=1) if i % 2 == 0 and k not in bad]
    assert len(dm.test_set) == len(expected_test)


def test_cub_attngan_layout_detected_and_split_from_pickles(tmp_path, caplog):
    cub_fx.write_attngan(tmp_path / "data")
    dm = make(CUBCaptions, tmp_path / "data", tmp_path)
    with caplog.at_level(logging.INFO, logger="t2i"):
        dm.setup()
    assert "attngan layout" in caplog.text
    assert labels(dm.test_set) == {class_label(c) for c in cub_fx.TEST_CLASSES}
    assert not labels(dm.train_set) & labels(dm.test_set)
    assert dm.stats["images_missing"] == 6 and dm.stats["empty_caption_files"] == 1
    # an explicit layout that is not there names what it looked for
    with pytest.raises(DatasetNotFoundError, match="text_c10"):
        make(CUBCaptions, tmp_path / "data", tmp_path, layout="reed").setup()


def test_object_crop_is_1_5x_the_box_clamped():
    assert object_crop(200, 200, (80, 80, 40, 20)) == (70, 60, 130, 120)  # side 1.5 x 40 around (100, 90)
    left, top, right, bottom = object_crop(100, 80, (0, 0, 60, 40))
    assert (left, top) == (0, 0) and right <= 100 and bottom <= 80


def test_cub_bbox_crop_centres_the_bird(cub_root, tmp_path):
    crops = {}
    for crop in ("bbox", "centre"):
        dm = make(CUBCaptions, cub_root, tmp_path, crop=crop, image_size=32)
        dm.setup()
        images = np.asarray(dm.test_set.images, dtype=np.float64)
        # the bird (yellow or white) covers far more of a bbox crop than of the whole photo's centre
        crops[crop] = np.abs(images - 128).mean()
    assert crops["bbox"] > 1.2 * crops["centre"]


def test_cub_cache_is_reused(cub_root, tmp_path, monkeypatch):
    make(CUBCaptions, cub_root, tmp_path).setup()
    calls = []
    real = cache_mod.load_image
    monkeypatch.setattr(cache_mod, "load_image", lambda *a: calls.append(a) or real(*a))
    dm = make(CUBCaptions, cub_root, tmp_path)
    dm.setup()
    assert calls == [] and len(dm.test_set) == 10
    make(CUBCaptions, cub_root, tmp_path, crop="centre").setup()  # another preprocessing: decoded anew
    assert len(calls) > 0


def test_cub_missing_everything_names_layout_and_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        make(CUBCaptions, tmp_path / "empty", tmp_path).setup()
    message = str(err.value)
    for part in ("text_c10", "CUB_200_2011/images", "filenames.pickle", "data.caltech.edu", "reedscot/icml2016"):
        assert part in message, part


def test_cub_attngan_text_zip_not_extracted_says_so(tmp_path):
    cub_fx.write_attngan(tmp_path / "data")
    shutil.make_archive(str(tmp_path / "data" / "birds" / "text"), "zip", tmp_path / "data" / "birds" / "text")
    shutil.rmtree(tmp_path / "data" / "birds" / "text")
    with pytest.raises(DatasetNotFoundError, match="Extract .*text.zip"):
        make(CUBCaptions, tmp_path / "data", tmp_path).setup()


def test_cub_captions_without_any_image_is_a_clear_error(cub_root, tmp_path):
    shutil.rmtree(cub_root / "CUB_200_2011" / "images")
    with pytest.raises(DatasetNotFoundError, match="none of their images"):
        make(CUBCaptions, cub_root, tmp_path).setup()


def test_cub_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="data.crop"):
        CUBCaptions(root=str(tmp_path), crop="square")
    with pytest.raises(ValueError, match="data.split"):
        CUBCaptions(root=str(tmp_path), split="random")
    with pytest.raises(ValueError, match="needs data.split=classes"):
        CUBCaptions(root=str(tmp_path), split="images", val_split="classes")


# ------------------------------------------------------------------ Flowers
def test_flowers_seeded_class_split_without_split_files(flowers_root, tmp_path, caplog):
    dm = make(FlowersCaptions, flowers_root, tmp_path)
    with caplog.at_level(logging.INFO, logger="t2i"):
        dm.setup()
    assert "seeded class-disjoint split of the 7 captioned classes, 6 train+val / 1 test" in caplog.text
    assert len(labels(dm.test_set)) == 1 and not (labels(dm.train_set) | labels(dm.val_set)) & labels(dm.test_set)
    assert len(dm.test_set) == flowers_fx.PER_CLASS
    stats = dm.stats
    assert stats["images_missing"] == flowers_fx.PER_CLASS + 1 and stats["empty_caption_files"] == 1
    assert stats["captions_without_image"] == 10 * (flowers_fx.PER_CLASS + 1)
    # the split does not depend on which images are on disk: delete a training class's images
    train_label = min(labels(dm.train_set))
    for name in (flowers_fx.image_name(train_label + 1, i) for i in range(flowers_fx.PER_CLASS)):
        (flowers_root / "jpg" / f"{name}.jpg").unlink(missing_ok=True)
    again = make(FlowersCaptions, flowers_root, tmp_path)
    again.setup()
    assert labels(again.test_set) == labels(dm.test_set) and train_label not in labels(again.train_set)


def test_flowers_reed_class_files_are_read(flowers_root, tmp_path):
    flowers_fx.write_class_lists(flowers_root, test=(2, 6), val=(3,))
    dm = make(FlowersCaptions, flowers_root, tmp_path, val_split="classes")
    dm.setup()
    assert labels(dm.test_set) == {1, 5}
    assert labels(dm.val_set) == {2}
    assert labels(dm.train_set) == {0, 3, 6}  # class 5 (label 4) has no images
    # image 7 (class 2, test) has an empty caption file: 4 of its 5 birds remain
    assert len(dm.test_set) == 9


def test_flowers_image_split_shares_classes(flowers_root, tmp_path):
    dm = make(FlowersCaptions, flowers_root, tmp_path, split="images")
    dm.setup()
    assert len(dm.test_set) > 0 and len(dm.train_set) > len(dm.test_set)


def test_flowers_missing_everything_names_layout_and_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        make(FlowersCaptions, tmp_path / "empty", tmp_path).setup()
    for part in ("jpg/image_NNNNN.jpg", "text_c10/class_000NN", "robots.ox.ac.uk", "reedscot/icml2016"):
        assert part in str(err.value), part


def test_flower_field_proxy_is_a_valid_oxford102_layout(tmp_path):
    """The synthetic flowers used for full-scale comparisons (docs/text_to_image.md) read
    as Oxford-102: Reed's class files honoured, test classes unseen in training, and every
    caption names its class's petal colour."""
    flower_field.write(tmp_path / "ff", per_class=2, test_classes=20)
    dm = make(FlowersCaptions, tmp_path / "ff", tmp_path, val_split="classes")
    dm.setup()
    n = len(flower_field.CLASSES)
    assert len(labels(dm.test_set)) == 20 and len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == 2 * n
    assert not labels(dm.test_set) & (labels(dm.train_set) | labels(dm.val_set))
    for klass, (colour, _, _) in enumerate(flower_field.CLASSES, start=1):
        for path in (tmp_path / "ff" / "text_c10" / f"class_{klass:05d}").glob("*.txt"):
            lines = path.read_text().splitlines()
            assert len(lines) == 10 and all(colour in line for line in lines)


# ------------------------------------------------------------------ real samples
@pytest.mark.skipif(not (SHARED_DATA / "cub").is_dir(), reason="../shared/data/cub not present")
def test_shared_cub_sample(tmp_path):
    dm = make(CUBCaptions, SHARED_DATA / "cub", tmp_path)
    dm.setup()
    # 24 birds of 2 classes: 001 is one of Reed's test classes, 002 a train+val one
    assert len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == 24
    assert labels(dm.test_set) == {0} and labels(dm.train_set) == {1}
    assert dm.stats["captions_without_image"] == 10 * (120 - 24)


@pytest.mark.skipif(not (SHARED_DATA / "flowers").is_dir(), reason="../shared/data/flowers not present")
def test_shared_flowers_sample(tmp_path):
    dm = make(FlowersCaptions, SHARED_DATA / "flowers", tmp_path)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == 24
    assert len(labels(dm.test_set)) == 1 and not labels(dm.train_set) & labels(dm.test_set)
    assert dm.stats["images_missing"] == 291 - 24
