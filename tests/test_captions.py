"""Captioned shapes: the text-to-image batch contract, conditioning that reaches a
model, resumable caption sampling and the vocabulary restored from a checkpoint."""
from __future__ import annotations

import hydra
import torch
import torch.nn.functional as F

from t2i.data.caption_dataset import CaptionSampler
from t2i.data.synthetic.shapes import FILLS, QUADRANTS, SHAPES, SIZES, ShapesDataModule
from t2i.data.synthetic.shapes_captions import ShapesCaptionsDataModule
from t2i.run import load_checkpoint, train
from t2i.text import WordVectors, tokenize
from t2i.text.word2vec import train_word2vec


def make(tmp_path, **kw) -> ShapesCaptionsDataModule:
    kw = {"splits": (600, 100, 100), "cache_dir": str(tmp_path / "cache"), **kw}
    return ShapesCaptionsDataModule(**kw)


def test_batch_contract(tmp_path):
    dm = make(tmp_path, batch_size=32)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (32, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert -1 <= batch["image"].min() < batch["image"].max() <= 1
    assert batch["word_vectors"].shape == (32, 25, 400) and batch["word_vectors"].dtype == torch.float32
    assert batch["length"].dtype == torch.long and (batch["length"] == 8).all()  # "a small filled circle in ..."
    assert (batch["word_vectors"][:, 8:] == 0).all() and (batch["word_vectors"][:, :8].abs().sum(-1) > 0).all()
    assert batch["targets"].shape == (32, 4) and batch["targets"].dtype == torch.long
    assert (dm.channels, dm.image_size, dm.max_words, dm.embedding_dim) == (1, 32, 25, 400)
    assert dm.target_names == ("shape", "size", "fill", "position") and dm.domain_name == "shapes"
    # each caption names its image's targets
    for text, t in zip(batch["caption"], batch["targets"].tolist()):
        assert text == f"a {SIZES[t[1]]} {FILLS[t[2]]} {SHAPES[t[0]]} in the {QUADRANTS[t[3]]}"


def test_same_images_as_the_shapes_data(tmp_path):
    dm, plain = make(tmp_path, seed=3), ShapesDataModule(splits=(600, 100, 100), image_size=32, seed=3)
    dm.setup(), plain.setup()
    assert torch.equal(dm.val_set.images, plain.val_set.images)
    assert dm.val_set.captions == plain.val_set.fields["caption"]
    item = dm.val_set[5]
    assert torch.equal(item["targets"], plain.val_set[5]["targets"])
    batch = dm.collate_fn([dm.val_set[i] for i in range(6)])  # how evaluation batches items
    assert batch["word_vectors"].shape == (6, 25, 400)


def test_conditioning_reaches_a_model_only_when_standardised(tmp_path):
    """The measured pitfall: a small network fed the mean raw word2vec vector of a
    caption cannot tell circles from squares (the vectors nearly coincide); fed the
    standardised ones it learns shape and position within 30 steps."""
    dm = make(tmp_path, splits=(1000, 300, 10))
    dm.setup()
    train_tokens = [tokenize(c) for c in dm.train_set.captions]
    kv = train_word2vec(train_tokens, dim=400, sg=1, seed=0, cache_dir=tmp_path / "cache")  # dm's, cached
    raw = WordVectors.build(dm.vocabulary, kv, train_tokens, standardize=False)

    def accuracy(wv: WordVectors, column: int, classes: int) -> float:
        def features(ds):  # a caption's mean word vector, as GAN-CLS's mean encoder sees it
            return wv.matrix[ds.token_ids.long()].sum(1) / ds.lengths[:, None]
        torch.manual_seed(0)
        x, y = features(dm.train_set), dm.train_set.fields["targets"][:, column]
        net = torch.nn.Sequential(torch.nn.Linear(400, 64), torch.nn.ReLU(), torch.nn.Linear(64, classes))
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        for _ in range(30):  # full batch
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            predicted = net(features(dm.val_set)).argmax(1)
        return float((predicted == dm.val_set.fields["targets"][:, column]).float().mean())

    assert accuracy(dm.word_vectors, 0, 2) > 0.95 and accuracy(dm.word_vectors, 3, 5) > 0.95
    assert accuracy(raw, 0, 2) < 0.7  # chance is 0.5


def test_encode_new_captions_and_unknown_words(tmp_path, caplog):
    dm = make(tmp_path)
    dm.setup()
    out = dm.encode(["a large filled square in the bottom right", "a purple zebra", ""])
    assert out["word_vectors"].shape == (3, 25, 400) and out["length"].tolist() == [8, 3, 1]
    assert out["unknown"] == [[], ["purple", "zebra"], []]
    assert "purple, zebra" in caplog.text
    expected = dm.collate_fn([dm.val_set[0]])["word_vectors"][0]
    assert torch.equal(dm.encode([dm.val_set.captions[0]])["word_vectors"][0], expected)
    assert dm.text_stats["train/unknown_words"] == 0 and dm.text_stats["train/words"] == 600 * 8


def test_caption_sampler_resumes_mid_epoch():
    full = list(CaptionSampler(10, seed=1, batch_size=2))
    resumed = CaptionSampler(10, seed=1, batch_size=2, progress=lambda: (3, 5))  # 3 of 5 batches done
    assert list(resumed) == full[6:]
    next_epoch = list(CaptionSampler(10, seed=1, batch_size=2, progress=lambda: (5, 5)))
    assert sorted(i for i, _ in next_epoch) == list(range(10)) and next_epoch != full


def test_state_dict_restores_vocabulary_and_reencodes(tmp_path):
    dm = make(tmp_path)
    dm.setup()
    state = dm.state_dict()
    other = make(tmp_path, splits=(50, 10, 10), shape="circle", seed=7)  # no "square"
    other.setup()
    assert other.vocabulary.itos != dm.vocabulary.itos
    other.load_state_dict(state)  # what Lightning does on resume (after setup)
    assert other.vocabulary.itos == dm.vocabulary.itos
    item = other.train_set[0]
    assert [other.vocabulary.itos[i] for i in item["token_ids"][: item["length"]]] == tokenize(item["caption"])


def test_checkpoint_encodes_captions_without_the_dataset(make_cfg, tmp_path):
    """train.py stores the data module's state in the checkpoint; load_checkpoint
    restores it, so new captions are encoded as in training."""
    out = tmp_path / "run"
    cfg = make_cfg(["experiment=shapes_dcgan", "data=shapes_captions", "model=dcgan", "data.splits=[64,16,16]",
                    "data.batch_size=16",
                    "trainer.max_steps=2", "logger=csv", "evaluate_after_fit=false"], out=out)
    train(cfg)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    _, restored, _ = load_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    assert restored.train_set is None  # no setup: nothing read or generated
    text = ["a small outline circle in the top right"]
    assert torch.equal(restored.encode(text)["word_vectors"], dm.encode(text)["word_vectors"])
