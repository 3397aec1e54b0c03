"""Flickr8k/30k readers on tiny files written in each real layout, and on the real
sample in ../shared/data/flickr8k when it is there."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from t2i.data.base import DatasetNotFoundError
from t2i.data.flickr import FlickrCaptions, parse_results_csv, parse_token_file
from tests.conftest import SHARED_DATA
from tests.fixtures import flickr as fx

W2V = dict(epochs=2)  # tiny corpora: the vectors' quality is not what these tests check


def make(root: Path, tmp_path: Path, **kw) -> FlickrCaptions:
    kw = {"embedding_dim": 16, "word2vec": W2V, "batch_size": 4, "cache_workers": 1, **kw}
    return FlickrCaptions(root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def test_official_flickr8k_layout_with_quirks(tmp_path, caplog):
    fx.write(tmp_path / "data")
    dm = make(tmp_path / "data", tmp_path)
    with caplog.at_level(logging.INFO, logger="t2i"):
        dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (16, 4, 4)
    stats = dm.stats
    assert stats["images_unreadable"] == 1  # the corrupt JPEG, skipped
    assert stats["images_in_no_split"] == 1  # the absent '.jpg.1' name
    assert stats["captions_without_image"] == 5
    assert "5 captions skipped" in caplog.text and "1 unreadable" in caplog.text
    # stray spaces collapsed, ' .' attached; five captions per image kept
    ds = dm.train_set
    assert ds.count.tolist() == [5] * 16
    assert ds.captions[0] == "A red dog runs on the grass."
    assert ds.captions[2] == "The red dog plays outside"
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and -1 <= item["image"].min() < item["image"].max() <= 1
    # the image really is the first name's (red) picture: cached, resized, cropped
    red, green = item["image"][0].mean(), item["image"][1].mean()
    assert red > 0.5 and green < -0.5


def test_each_epoch_draws_one_caption_per_image(tmp_path):
    fx.write(tmp_path / "data")
    dm = make(tmp_path / "data", tmp_path, batch_size=16)
    dm.setup()
    loader = dm.train_dataloader()
    seen = []
    for epoch in range(4):
        loader.sampler.set_epoch(epoch)
        batch = next(iter(loader))
        assert len(batch["caption"]) == 16 and len(set(batch["caption"])) == 16  # one per image
        seen.append(set(batch["caption"]))
    assert len(set.union(*seen)) > 16  # other captions in other epochs
    loader.sampler.set_epoch(1)
    assert set(next(iter(loader))["caption"]) == seen[1]  # the same epoch, the same draw


def test_batch_contract_and_word_vectors(tmp_path):
    fx.write(tmp_path / "data")
    dm = make(tmp_path / "data", tmp_path, max_words=5)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    b, L, D = 4, 5, 16
    assert batch["image"].shape == (b, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert batch["word_vectors"].shape == (b, L, D) and batch["length"].dtype == torch.long
    assert ((batch["length"] >= 1) & (batch["length"] <= L)).all()
    for i in range(b):  # rows past the length are the zero padding
        n = batch["length"][i]
        assert batch["word_vectors"][i, n:].abs().sum() == 0 and batch["word_vectors"][i, :n].abs().sum() > 0
    # long captions keep words 1..L-1 and the last word
    enc = dm.encode(["a red dog runs on the grass outside"])
    words = dm.vocabulary.itos
    assert [words[i] for i in enc["token_ids"][0].tolist()] == ["a", "red", "dog", "runs", "outside"]


@pytest.mark.parametrize("layout", ["flickr30k_token", "results_csv", "karpathy_30k", "karpathy_8k", "captions_csv"])
def test_other_layouts(layout, tmp_path):
    names = fx.image_names(24)
    root = tmp_path / "data"
    root.mkdir()
    writer = {"flickr30k_token": fx.write_flickr30k_token, "results_csv": fx.write_results_csv,
              "karpathy_30k": fx.write_karpathy_json, "captions_csv": fx.write_captions_csv,
              "karpathy_8k": lambda r, n: fx.write_karpathy_json(r, n, variant="8k")}[layout]
    writer(root, names)
    dm = make(root, tmp_path, val_size=3, test_size=2)
    dm.setup()
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    if layout.startswith("karpathy"):
        assert sizes == (16, 4, 4)  # Karpathy's split, restval counted as train
    else:
        assert sizes == (19, 3, 2)  # no split in these layouts: seeded random one
    assert int(dm.train_set.count.sum() + dm.val_set.count.sum() + dm.test_set.count.sum()) == 24 * 5
    captions = set(dm.train_set.captions) | set(dm.val_set.captions) | set(dm.test_set.captions)
    assert "Red dog in a field." in captions and "A dog, red, jumps." in captions
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["word_vectors"].shape == (4, 25, 16)


def test_random_split_is_fixed_by_split_seed_not_run_seed(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    fx.write_flickr30k_token(root, fx.image_names(24))
    a, b = make(root, tmp_path, val_size=3, test_size=3, seed=1), make(root, tmp_path, val_size=3, test_size=3, seed=2)
    a.setup(), b.setup()
    assert a.test_set.captions == b.test_set.captions
    c = make(root, tmp_path, val_size=3, test_size=3, split_seed=5)
    c.setup()
    assert c.test_set.captions != a.test_set.captions


def test_results_csv_line_without_second_separator_is_recovered(tmp_path):
    fx.write_results_csv(tmp_path, fx.image_names(2))
    ann = parse_results_csv(tmp_path / "flickr30k_images" / "results.csv")
    assert ann.bad_lines == 0 and len(ann.captions[fx.image_names(2)[0]]) == 5
    assert ann.captions[fx.image_names(2)[0]][4].strip() == "Red dog in a field ."


def test_token_file_tolerates_bad_lines(tmp_path):
    path = tmp_path / "t.token"
    path.write_bytes("a.jpg#0\tA dog .\n\nb.jpg#0\t   \nc.jpg#0 caf\xe9 dog\nd.jpg#1\tstray \xff byte\n"
                     .encode("latin-1"))
    ann = parse_token_file(path)
    assert ann.captions["a.jpg"] == ["A dog ."] and ann.bad_lines == 1
    assert "c.jpg" in ann.captions and "d.jpg" in ann.captions


def test_cache_is_built_once_and_reused(tmp_path):
    fx.write(tmp_path / "data")
    make(tmp_path / "data", tmp_path).setup()
    files = sorted((tmp_path / "cache" / "images").glob("*.npy"))
    assert files and all(f.name.startswith("flickr8k-") for f in files)
    mtimes = [f.stat().st_mtime_ns for f in files]
    dm = make(tmp_path / "data", tmp_path)
    dm.setup()
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert isinstance(dm.train_set.images, np.memmap)  # memory-mapped, not decoded again


def test_missing_dataset_fails_fast_with_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Flickr8k_text|Get Flickr8k"):
        make(tmp_path, tmp_path).setup()
    (tmp_path / "Flickr8k_text").mkdir()
    fx.write_token_file(tmp_path / "Flickr8k_text" / "Flickr8k.token.txt", fx.image_names(3))
    with pytest.raises(DatasetNotFoundError, match="none of their images"):
        make(tmp_path, tmp_path).setup()


def test_both_variants_present_asks_to_choose(tmp_path):
    fx.write(tmp_path / "data")
    fx.write_flickr30k_token(tmp_path / "data", fx.image_names(24))
    with pytest.raises(ValueError, match="data.variant=8k"):
        make(tmp_path / "data", tmp_path).setup()
    dm = make(tmp_path / "data", tmp_path, variant="30k", val_size=2, test_size=2)
    dm.setup()
    assert len(dm.train_set) == 20


def test_checkpoint_state_encodes_without_the_dataset(tmp_path):
    fx.write(tmp_path / "data")
    dm = make(tmp_path / "data", tmp_path)
    dm.setup()
    state = dm.state_dict()
    fresh = make(tmp_path / "nowhere", tmp_path)
    fresh.load_state_dict(state)
    a, b = dm.encode(["a green cat plays"]), fresh.encode(["a green cat plays"])
    assert torch.equal(a["word_vectors"], b["word_vectors"]) and a["word_vectors"].abs().sum() > 0


REAL = SHARED_DATA / "flickr8k"


@pytest.mark.skipif(not (REAL / "Flickr8k_text" / "Flickr8k.token.txt").exists(), reason="no ../shared sample")
def test_real_flickr8k_sample(tmp_path, caplog):
    dm = make(REAL, tmp_path, embedding_dim=32)
    with caplog.at_level(logging.INFO, logger="t2i"):
        dm.setup()
    n_images = len(list((REAL / "Flicker8k_Dataset").glob("*.jpg")))
    stats = dm.stats
    assert len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == n_images - stats["images_unreadable"]
    # the official split names 8000 images; all the others listed are absent here
    assert stats["images_missing"] + n_images == 8000
    assert stats["images_in_no_split"] == 92  # 91 unused images + the '.jpg.1' name
    assert "captions skipped" in caplog.text
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["word_vectors"].shape == (4, 25, 32)
    assert not any(c.endswith(" .") or "  " in c for c in dm.train_set.captions)
