"""The one seeded split helper (t2i/data/splits.py) and the data modules that use it.
The expected indices were computed with each module's own split code before it moved to
the helper (published numbers depend on those splits): they must never change."""
import numpy as np
import pytest

from t2i.data.coco_files import Pool, split_pools
from t2i.data.flickr_files import random_split
from t2i.data.reed_captions import seeded_class_split
from t2i.data.splits import carve, pick, split_count
from t2i.data.vision import split_train_val

NAMES = [f"n{i:02d}" for i in range(12)]


def test_flickr_random_split_is_the_old_one():
    split = random_split(list(reversed(NAMES)), val_size=3, test_size=2, seed=7)  # listing order does not matter
    assert sorted(n for n in NAMES if split[n] == "test") == ["n04", "n06"]
    assert sorted(n for n in NAMES if split[n] == "val") == ["n00", "n01", "n10"]
    assert sorted(n for n in NAMES if split[n] == "train") == ["n02", "n03", "n05", "n07", "n08", "n09", "n11"]
    assert random_split(NAMES[:4], 3, 2, 0) == {"n02": "test", "n00": "val", "n01": "train", "n03": "train"}


def test_birds_flowers_draws_are_the_old_ones():
    assert pick(NAMES, 4, 3) == {"n02", "n07", "n10", "n11"}
    assert seeded_class_split(NAMES, 0.25, 1) == {"n04", "n08", "n11"}


def test_vision_val_split_is_the_old_one():
    train, val = split_train_val(12, 3, 5)
    assert train.tolist() == [0, 2, 3, 4, 5, 6, 7, 8, 10] and val.tolist() == [1, 9, 11]


def test_coco_carve_is_the_old_one():
    pool = Pool("val2014", [f"{i}.jpg" for i in range(12)], [[f"caption {i}"] for i in range(12)])
    pool.images = np.arange(12)[:, None]
    splits = split_pools([pool], val_size=2, test_size=3, seed=4)
    assert [list(splits[s][0].index) for s in ("val", "test", "train")] == [[0, 1], [2, 8, 10],
                                                                          [3, 4, 5, 6, 7, 9, 11]]


def test_imdb_splits_are_the_old_ones():
    val, train = carve(10, [2], [9, 3], sort=False)  # IMDBDataModule._split_train_val: train stays shuffled
    assert val.tolist() == [1, 2] and train.tolist() == [6, 5, 8, 4, 7, 3, 0, 9]
    test, train = carve(10, [5], [9, 2])  # IMDBDataModule._csv_split
    assert test.tolist() == [4, 5, 6, 7, 8] and train.tolist() == [0, 1, 2, 3, 9]


def test_carve_parts_are_disjoint_and_cover_everything():
    parts = carve(50, [7, 11], seed=3)
    assert [len(p) for p in parts] == [7, 11, 32]
    assert sorted(np.concatenate(parts).tolist()) == list(range(50))
    assert all(np.array_equal(a, b) for a, b in zip(parts, carve(50, [7, 11], seed=3)))
    assert not np.array_equal(parts[0], carve(50, [7, 11], seed=4)[0])


@pytest.mark.parametrize("size, n, expected", [(0.1, 100, 10), (0.001, 100, 1), (5, 100, 5), (5.0, 100, 5),
                                               (0, 100, 0), (200, 100, 99)])
def test_split_count_reads_counts_and_fractions(size, n, expected):
    assert split_count(size, n) == expected


def test_split_count_names_the_setting_on_bad_input():
    with pytest.raises(ValueError, match=r"data.test_size must be a count >= 1 or a fraction in \(0, 1\), got 0"):
        split_count(0, 10, "data.test_size", minimum=1)
    with pytest.raises(ValueError, match="data.val_size"):
        split_count(1.5, 10)
    assert split_count(200, 100, leave_one=False) == 200
