"""IMDB sentiment: the aclImdb and CSV readers (bad files skipped and counted), length
bucketing, the recurrent classifier's handling of padding, training + evaluate.py on a
fixture, and (slow) the three-encoder sweep turned into a report."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

import t2i.data.imdb as imdb_module
from t2i.data.base import DatasetNotFoundError
from t2i.data.imdb import BucketBatchSampler, IMDBDataModule, pad_batch
from t2i.data.imdb_files import rating_of
from t2i.nets.rnn import RecurrentClassifier
from t2i.run import evaluate, train
from t2i.tasks.sentiment import SentimentClassifier
from tests.conftest import ROOT, SHARED_DATA
from tests.fixtures import imdb as imdb_fixture

REAL_IMDB = SHARED_DATA / "imdb"


@pytest.fixture
def acl_root(tmp_path) -> Path:
    imdb_fixture.write(tmp_path / "imdb")
    return tmp_path / "imdb"


def words_of(dm: IMDBDataModule, dataset, i: int) -> list[str]:
    return [dm.vocab.itos[t] for t in dataset[i]["tokens"].tolist()]


# ------------------------------------------------------------------ reading
def test_acl_layout_skips_and_counts_bad_files(acl_root):
    dm = IMDBDataModule(root=str(acl_root), val_fraction=0.2, seed=1)
    dm.setup("fit")
    dm.setup("test")
    # 40 good training reviews + the non-UTF-8 one; 2 empty and 1 badly named file skipped
    assert len(dm.train_set) + len(dm.val_set) == 41
    assert len(dm.val_set) == round(41 * 0.2)
    assert len(dm.test_set) == 20
    assert dm.skipped["train"] == {"empty": 2, "name not <id>_<rating>.txt": 1}
    assert not dm.skipped["test"]
    assert "br" not in dm.vocab and "<br" not in dm.vocab  # <br /> tags removed by the tokenizer
    assert "café" in dm.vocab and "naïve" in dm.vocab
    assert "\ufffd" not in "".join(dm.vocab.itos)  # the replaced byte splits a word, it is no token
    labels = np.concatenate([dm.train_set.labels, dm.val_set.labels])
    assert labels.sum() == 21  # 20 positive + the non-UTF-8 positive review


def test_labels_come_from_folders(acl_root):
    dm = IMDBDataModule(root=str(acl_root), val_fraction=0.0)
    dm.setup("fit")
    for i in range(len(dm.train_set)):
        words = set(words_of(dm, dm.train_set, i))
        positive, negative = words & set(imdb_fixture.POSITIVE), words & set(imdb_fixture.NEGATIVE)
        if positive or negative:  # fixture reviews carry only their own class's cue words
            assert bool(positive) == bool(dm.train_set[i]["label"]) and not (positive and negative)


def test_rating_in_file_name():
    assert rating_of("123_7.txt") == 7 and rating_of("0_10.txt") == 10
    assert rating_of("12_0.txt") is None and rating_of("12_11.txt") is None
    assert rating_of("notes.txt") is None and rating_of("12_7.txt.bak") is None


def test_length_policy_and_truncation_side(tmp_path):
    folder = tmp_path / "aclImdb"
    long_review = " ".join(f"w{i}" for i in range(30))
    for split in ("train", "test"):
        for sentiment in ("pos", "neg"):
            (folder / split / sentiment).mkdir(parents=True)
            (folder / split / sentiment / "0_8.txt").write_text(long_review)
            (folder / split / sentiment / "1_8.txt").write_text("short review here")
    head = IMDBDataModule(root=str(tmp_path), max_len=10, val_fraction=0.0)
    head.setup()
    lengths = sorted(head.train_set.lengths.tolist())
    assert lengths == [3, 3, 10, 10]
    longest = int(np.argmax(head.train_set.lengths))
    assert words_of(head, head.train_set, longest) == [f"w{i}" for i in range(10)]
    tail = IMDBDataModule(root=str(tmp_path), max_len=10, val_fraction=0.0, truncate_side="tail")
    tail.setup()
    assert words_of(tail, tail.train_set, int(np.argmax(tail.train_set.lengths))) == [f"w{i}" for i in range(20, 30)]
    filtered = IMDBDataModule(root=str(tmp_path), max_len=10, val_fraction=0.0, length_policy="filter")
    filtered.setup()
    assert len(filtered.train_set) == 2 and len(filtered.test_set) == 2
    assert filtered.skipped["train"] == {"longer than max_len=10": 2}


def test_max_train_and_max_test_subsample_reproducibly(acl_root):
    def make(seed):
        dm = IMDBDataModule(root=str(acl_root), max_train=12, max_test=6, val_fraction=0.25, seed=seed)
        dm.setup()
        return dm
    a, b, c = make(0), make(0), make(5)
    assert len(a.train_set) + len(a.val_set) == 12 and len(a.test_set) == 6
    assert np.array_equal(a.train_set.ids, b.train_set.ids) and np.array_equal(a.test_set.ids, b.test_set.ids)
    assert not np.array_equal(a.train_set.ids, c.train_set.ids)


def test_vocab_size_caps_the_vocabulary(acl_root):
    dm = IMDBDataModule(root=str(acl_root), vocab_size=8)
    dm.setup("fit")
    assert len(dm.vocab) == 8
    assert max(dm.train_set.ids) <= 7 and (dm.train_set.ids == dm.vocab.unk_id).any()


def write_kaggle_csv(path: Path, n: int = 30) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for i in range(n):
            positive = i % 2 == 0
            words = "wonderful great, loved it" if positive else "boring, awful waste"
            label = ["positive", "pos", "1"][i % 3] if positive else ["negative", "neg", "0"][i % 3]
            writer.writerow([f'"{words}"<br /><br />review {i}, with a comma', label])
        writer.writerow(["", "positive"])           # empty review
        writer.writerow(["fine film", "neutral"])   # unknown sentiment
    with open(path, "ab") as f:
        f.write(b'"caf\xe9 was great",positive\n')  # not UTF-8: kept


def test_kaggle_csv_form(tmp_path):
    write_kaggle_csv(tmp_path / "IMDB Dataset.csv")
    dm = IMDBDataModule(root=str(tmp_path), val_fraction=0.0, csv_test_fraction=0.5)
    dm.setup()
    assert len(dm.train_set) + len(dm.test_set) == 31
    assert abs(len(dm.test_set) - 15.5) <= 0.5
    assert sum(dm.skipped["train"].values()) == 2
    assert "wonderful" in dm.vocab and "br" not in dm.vocab
    everything = np.concatenate([dm.train_set.labels, dm.test_set.labels])
    assert everything.sum() == 16  # 15 positive rows + the non-UTF-8 one


def test_any_csv_with_a_review_sentiment_header(tmp_path):
    write_kaggle_csv(tmp_path / "reviews.csv", n=10)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    dm = IMDBDataModule(root=str(tmp_path), val_fraction=0.0, format="csv")
    dm.setup()
    assert len(dm.train_set) + len(dm.test_set) == 11


def test_missing_dataset_names_the_files_and_the_download(tmp_path):
    dm = IMDBDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match=r"aclImdb/\{train,test\}.*\n.*download=true"):
        dm.setup()


def test_download_only_when_missing(acl_root, tmp_path, monkeypatch):
    calls = []

    def fake_download(name, root, mirror=None):  # t2i.data.download's fetch, tested in test_download.py
        calls.append(name)
        imdb_fixture.write(Path(root))
    monkeypatch.setattr(imdb_module, "fetch_dataset", fake_download)
    IMDBDataModule(root=str(acl_root), download=True).prepare_data()
    assert calls == []
    empty = tmp_path / "fresh"
    dm = IMDBDataModule(root=str(empty), download=True)
    dm.prepare_data()
    assert calls == ["imdb"]
    dm.setup("fit")
    assert len(dm.train_set) > 0


@pytest.mark.skipif(not REAL_IMDB.exists(), reason="needs ../shared/data/imdb (real aclImdb sample)")
def test_real_sample_reads_cleanly():
    dm = IMDBDataModule(root=str(REAL_IMDB), val_fraction=0.1)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 500 and len(dm.test_set) == 500
    assert sum(dm.skipped["train"].values()) == 0 and dm.train_set.lengths.max() == 200
    assert "br" not in dm.vocab and len(dm.vocab) <= 10_000


# ------------------------------------------------------------------ batches
def test_bucketing_covers_every_review_once_and_cuts_padding():
    lengths = np.random.default_rng(0).integers(1, 200, 1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=3, pool_batches=10)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    padding = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
    random_batches = np.random.default_rng(1).permutation(1000).reshape(-1, 40)[:, :32]
    random_padding = sum(32 * lengths[b].max() - lengths[b].sum() for b in random_batches) * 1000 / (25 * 32)
    assert padding < 0.2 * random_padding
    sampler.sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order each epoch...
    sampler.sampler.set_epoch(0)
    assert list(sampler) == batches  # ...that depends only on (seed, epoch)
    in_order = BucketBatchSampler(lengths, batch_size=32, shuffle=False)
    flat = [i for b in in_order for i in b]
    assert len(in_order) == len(list(in_order)) == 32 and (np.diff(lengths[flat]) >= 0).all()


def test_pad_batch():
    items = [{"tokens": torch.tensor([5, 6, 7]), "length": 3, "label": 1},
             {"tokens": torch.tensor([8]), "length": 1, "label": 0}]
    batch = pad_batch(items)
    assert batch["tokens"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["length"].tolist() == [3, 1] and batch["label"].tolist() == [1, 0]


# ------------------------------------------------------------------ the network
@pytest.mark.parametrize("encoder", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_padding_never_reaches_the_review_vector(encoder, pooling):
    torch.manual_seed(0)
    packed = RecurrentClassifier(50, 12, 8, encoder, pooling=pooling, pack=True).eval()
    causal = RecurrentClassifier(50, 12, 8, encoder, pooling=pooling, pack="auto").eval()
    causal.load_state_dict(packed.state_dict())
    lengths = torch.tensor([7, 2, 1, 5])
    tokens = torch.randint(2, 50, (4, 7)) * (torch.arange(7)[None] < lengths[:, None])
    expected = torch.stack([packed(tokens[i:i + 1, :n], lengths[i:i + 1]) for i, n in enumerate(lengths.tolist())])
    more_padding = torch.cat([tokens, torch.zeros(4, 5, dtype=torch.long)], dim=1)
    for net in (packed, causal):
        assert torch.allclose(net(tokens, lengths), expected.squeeze(1), atol=1e-5)
        assert torch.allclose(net(more_padding, lengths), expected.squeeze(1), atol=1e-5)


def test_bidirectional_is_packed_and_checked():
    net = RecurrentClassifier(50, 8, 6, "gru", bidirectional=True)
    assert net.pack and net(torch.randint(1, 50, (3, 4)), torch.tensor([4, 2, 1])).shape == (3,)
    with pytest.raises(ValueError, match="padding"):
        RecurrentClassifier(50, 8, 6, "gru", bidirectional=True, pack=False)
    with pytest.raises(ValueError, match="model.encoder"):
        RecurrentClassifier(50, 8, 6, "transformer")


# ------------------------------------------------------------------ training and evaluation
def sentiment_overrides(root: Path, *extra: str) -> list[str]:
    return ["experiment=imdb_sentiment", f"data.root={root}", "data.batch_size=8", "data.val_fraction=0.2",
            "model.embedding_dim=16", "model.hidden_size=16", "trainer.max_epochs=12",
            "trainer.enable_progress_bar=false", "logger=csv", *extra]


def test_lstm_learns_fixture_and_evaluate_needs_only_the_test_split(acl_root, make_cfg, tmp_path):
    run_dir = tmp_path / "run"
    overrides = sentiment_overrides(acl_root, "model.pooling=max", "model.optimizer.lr=0.01",
                                    "model.lr_schedule=constant")
    threads = torch.get_num_threads()
    metrics = train(make_cfg(overrides, out=run_dir))
    assert torch.get_num_threads() == threads  # model.cpu_threads=1 applies during the run only
    assert metrics["test_acc"] >= 0.8 and metrics["test_f1"] >= 0.75  # chance: 0.5; seen: 0.9 (seeds 0-2)
    assert (run_dir / "confusion.png").stat().st_size > 1000
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["test_tp"] + written["test_tn"] + written["test_fp"] + written["test_fn"] == 20
    logged = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("train/loss", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1", "val/error",
                "train/reviews_per_s"):
        assert key in logged
    # evaluate.py: the vocabulary comes from the checkpoint, so the training reviews can be gone
    shutil.rmtree(acl_root / "aclImdb" / "train")
    eval_dir = tmp_path / "eval"
    cfg = make_cfg([f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"], name="evaluate", out=eval_dir)
    again = evaluate(cfg)
    assert again["test_acc"] == pytest.approx(written["test_acc"]) and (eval_dir / "confusion.png").exists()


def test_trainer_test_logs_test_metrics(acl_root):

    dm = IMDBDataModule(root=str(acl_root), batch_size=8, val_fraction=0.2)
    model = SentimentClassifier(vocab_size=100, optimizer=torch.optim.Adam, embedding_dim=8, hidden_size=8)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=1.0, num_sanity_val_steps=1)
    trainer.fit(model, datamodule=dm)
    assert {"train/loss", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1", "val/error"} <= set(
        trainer.callback_metrics)
    results = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert {"test/loss", "test/acc", "test/f1"} <= set(results) and 0 <= results["test/acc"] <= 1


def test_unknown_word2vec_settings_are_an_error_naming_the_valid_ones():

    # "epoch" for "epochs" was dropped silently: the vectors trained with the default 10 epochs
    with pytest.raises(ValueError, match=r"model.word2vec has unknown keys \['epoch'\]; known: .*'epochs'"):
        SentimentClassifier(vocab_size=100, optimizer=torch.optim.Adam, embedding_init="word2vec",
                            word2vec={"epoch": 2})


def test_word2vec_initialises_the_embedding(acl_root, tmp_path):

    dm = IMDBDataModule(root=str(acl_root))
    dm.setup("fit")
    model = SentimentClassifier(vocab_size=100, optimizer=torch.optim.Adam, embedding_dim=12, hidden_size=8,
                                embedding_init="word2vec", word2vec={"epochs": 2})
    before = model.net.embedding.weight.detach().clone()
    known = model.init_embedding_from_word2vec(dm, cache_dir=str(tmp_path / "cache"))
    after = model.net.embedding.weight.detach()
    assert known == len(dm.vocab) - 2  # every vocabulary word occurs in the word2vec corpus
    changed = (after != before).any(1)
    assert changed[2:len(dm.vocab)].all() and not changed[len(dm.vocab):].any()
    assert (after[0] == 0).all()
    # standardised: unit scale like a default N(0, 1) embedding
    assert 0.5 < after[2:len(dm.vocab)].std().item() < 2.0


def test_adadelta_is_selectable(make_cfg):
    cfg = make_cfg(["experiment=imdb_sentiment", "model/optimizer=adadelta"])
    assert cfg.model.optimizer._target_ == "torch.optim.Adadelta" and cfg.model.optimizer.lr == 1.0
    assert make_cfg(["experiment=imdb_sentiment"]).model.optimizer._target_ == "torch.optim.Adam"


@pytest.mark.slow
def test_three_encoder_sweep_and_report(tmp_path):
    """The seed's comparison as one multirun, then one command to the table and curves."""
    imdb_fixture.write(tmp_path / "imdb")
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, "train.py", "-m", "experiment=imdb_sentiment", "model.encoder=rnn,gru,lstm",
           f"data.root={tmp_path / 'imdb'}", "trainer.max_epochs=2", "model.embedding_dim=16",
           "model.hidden_size=16", "data.batch_size=8", "trainer.enable_progress_bar=false",
           f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for job in range(3):
        assert "test_acc" in json.loads((sweep / str(job) / "metrics.json").read_text())
    report = subprocess.run([sys.executable, "report.py", str(sweep), "--out", str(tmp_path / "report"),
                             "--curves", "val/error"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr[-3000:]
    table = (tmp_path / "report" / "report.md").read_text()
    for encoder in ("rnn", "gru", "lstm"):
        assert f"model.encoder={encoder}" in table
    assert "test_acc" in table and "val/error" in table
    assert (tmp_path / "report" / "report_curves.png").stat().st_size > 1000
