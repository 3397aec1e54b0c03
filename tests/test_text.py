"""The shared text pipeline: tokenising, vocabulary, gensim word vectors (trained and
cached, or pre-trained in word2vec binary/text and GloVe text) and the per-dimension
standardisation that templated captions need."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gensim.models import KeyedVectors

from t2i.data.synthetic.shapes import caption, sample_specs
from t2i.data.synthetic.shapes_captions import ShapesCaptionsDataModule
from t2i.text import Vocabulary, WordVectors, tokenize
from t2i.text.word2vec import check_settings, fit_word_vectors, load_pretrained, train_word2vec


def shapes_captions(n: int, seed: int = 0) -> list[list[str]]:
    spec = sample_specs(n, 32, np.random.default_rng(seed))
    return [tokenize(caption(spec, i)) for i in range(n)]


def cos(a, b) -> float:
    return float(F.cosine_similarity(torch.as_tensor(np.array(a)), torch.as_tensor(np.array(b)), dim=0))


# ---------------------------------------------------------------- tokenise
def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("A dog , running  fast .") == ["a", "dog", "running", "fast"]
    assert tokenize("Two dogs.The end!") == ["two", "dogs", "the", "end"]
    assert tokenize("Don't stop<br />NOW") == ["don't", "stop", "now"]
    assert tokenize("tri-colored dog's café") == ["tri", "colored", "dog's", "café"]
    assert tokenize("  . , ") == []
    with pytest.raises(TypeError):
        tokenize(None)


# -------------------------------------------------------------- vocabulary
def test_vocabulary_specials_order_and_encoding():
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]])
    assert vocab.itos == ["<pad>", "<unk>", "b", "a", "c"]  # by count, ties alphabetical
    assert vocab.pad_id == 0 and vocab.unk_id == 1
    assert vocab.encode(["a", "zebra"]) == [3, 1]
    words = [str(i) for i in range(30)]
    v = Vocabulary(words)
    ids = v.encode(words, max_len=25, keep_last=True)
    assert len(ids) == 25 and [v.itos[i] for i in ids] == words[:24] + ["29"]  # words 1..24 + the last
    assert v.encode(words, max_len=25) == v.encode(words[:25])
    assert v.pad(v.encode(["1", "2"]), 5).tolist() == [3, 4, 0, 0, 0]
    assert Vocabulary.from_state_dict(v.state_dict()).itos == v.itos
    assert len(Vocabulary.build([["a", "b", "b"]], max_size=3)) == 3


# ------------------------------------------------------- trained word2vec
def test_word2vec_is_deterministic_cached_and_configurable(tmp_path):
    tokens = shapes_captions(300)
    a = train_word2vec(tokens, dim=16, epochs=2, cache_dir=tmp_path)
    files = list((tmp_path / "word2vec").glob("*.kv"))
    assert len(files) == 1
    b = train_word2vec(tokens, dim=16, epochs=2, cache_dir=tmp_path)  # loaded from the cache
    assert np.array_equal(a["circle"], b["circle"])
    c = train_word2vec(tokens, dim=16, epochs=2)  # trained again, no cache: same vectors
    assert np.allclose(a["circle"], c["circle"])
    cbow = train_word2vec(tokens, dim=16, epochs=2, sg=0, cache_dir=tmp_path)
    assert len(list((tmp_path / "word2vec").glob("*.kv"))) == 2 and not np.allclose(a["circle"], cbow["circle"])
    with pytest.raises(ValueError, match="no words"):
        train_word2vec([[], []], dim=8)


def test_standardisation_pitfall_on_templated_captions():
    """word2vec on templated captions puts slot-filling words almost on top of each
    other; standardising every dimension over the training tokens separates them."""
    tokens = shapes_captions(2000)
    kv = train_word2vec(tokens, dim=400, sg=1, epochs=10)
    assert cos(kv["circle"], kv["square"]) > 0.95 and cos(kv["small"], kv["large"]) > 0.95
    vocab = Vocabulary.build(tokens)
    std = WordVectors.build(vocab, kv, tokens)
    raw = WordVectors.build(vocab, kv, tokens, standardize=False)
    s = vocab.stoi
    assert cos(std.matrix[s["circle"]], std.matrix[s["square"]]) < cos(raw.matrix[s["circle"]], raw.matrix[s["square"]])
    # what a sentence encoder sees: the mean of the word vectors of two captions that
    # differ in one word is the same direction raw, clearly apart standardised
    a, b = tokenize("a small filled circle in the top left"), tokenize("a small filled square in the top left")

    def mean_vector(wv, words):
        return wv.lookup(torch.tensor(vocab.encode(words))).mean(0)
    assert cos(mean_vector(raw, a), mean_vector(raw, b)) > 0.99
    assert cos(mean_vector(std, a), mean_vector(std, b)) < 0.8
    # statistics: every dimension has weighted mean 0 and std 1 over the training tokens
    ids = torch.tensor([i for t in tokens for i in vocab.encode(t)])
    per_token = std.matrix[ids]
    assert per_token.mean(0).abs().max() < 1e-3 and (per_token.std(0) - 1).abs().max() < 1e-2


def test_fit_word_vectors_is_word2vec_then_standardisation(tmp_path):
    """The one fitting function (captions, COCO, IMDB): the same vectors as training
    word2vec and standardising by hand, for the same seed and settings, and the same cache."""
    tokens = shapes_captions(300)
    vocab = Vocabulary.build(tokens)
    fitted = fit_word_vectors(tokens, vocab, 16, epochs=2, window=3, seed=5, cache_dir=tmp_path)
    by_hand = WordVectors.build(vocab, train_word2vec(tokens, dim=16, epochs=2, window=3, seed=5), tokens)
    assert torch.equal(fitted.matrix, by_hand.matrix) and torch.equal(fitted.known, by_hand.known)
    assert len(list((tmp_path / "word2vec").glob("w2v-*.kv"))) == 1  # the cache key of train_word2vec
    other_seed = fit_word_vectors(tokens, vocab, 16, epochs=2, window=3, seed=6)
    assert not torch.equal(fitted.matrix, other_seed.matrix)


def test_fit_word_vectors_names_the_setting_when_pretrained_vectors_differ_in_size(tmp_path):
    path = tmp_path / "vectors.kv"
    toy_vectors().save(str(path))
    tokens = [["a", "dog", "runs"]]
    with pytest.raises(ValueError, match=r"6-dimensional vectors but data.word2vec_dim=8: set data.word2vec_dim=6"):
        fit_word_vectors(tokens, Vocabulary.build(tokens), 8, pretrained=path, dim_setting="data.word2vec_dim")
    assert fit_word_vectors(tokens, Vocabulary.build(tokens), 6, pretrained=path).dim == 6


def test_check_settings_names_the_unknown_key_and_the_known_ones():
    check_settings({"epochs": 1}, ("epochs", "sg"), "data.word2vec")
    with pytest.raises(ValueError, match=r"data.word2vec has unknown keys \['epoch'\]; known: \['epochs', 'sg'\]"):
        check_settings({"epoch": 1}, ("epochs", "sg"), "data.word2vec")


def test_unknown_words_are_counted_not_fatal():
    tokens = shapes_captions(200)
    kv = train_word2vec(tokens, dim=8, epochs=1)
    vocab = Vocabulary.build(tokens + [["zebra"]])  # in the vocabulary, without a vector
    wv = WordVectors.build(vocab, kv, tokens)
    assert wv.unknown_words(["a", "zebra", "purple", "circle"]) == ["zebra", "purple"]
    assert wv.matrix[vocab.stoi["zebra"]].abs().sum() == 0 and wv.matrix[vocab.unk_id].abs().sum() == 0
    state = wv.state_dict()
    back = WordVectors.from_state_dict(state)
    assert torch.equal(back.matrix, wv.matrix) and back.vocab.itos == wv.vocab.itos


# --------------------------------------------------------- pre-trained files
def toy_vectors() -> KeyedVectors:
    kv = KeyedVectors(vector_size=6)
    words = ["a", "dog", "runs", "café", "the"]
    kv.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 6)).astype(np.float32))
    return kv


@pytest.mark.parametrize("form", ["word2vec_bin", "word2vec_txt", "glove_txt", "kv"])
def test_load_pretrained_formats(form, tmp_path):
    kv = toy_vectors()
    if form == "word2vec_bin":
        path = tmp_path / "vectors.bin"
        kv.save_word2vec_format(str(path), binary=True)
    elif form == "word2vec_txt":
        path = tmp_path / "vectors.txt"
        kv.save_word2vec_format(str(path), binary=False)
        assert path.read_text(encoding="utf8").splitlines()[0] == "5 6"
    elif form == "glove_txt":  # GloVe: no header line
        path = tmp_path / "glove.6B.6d.txt"
        lines = [" ".join([w] + [f"{x:.6f}" for x in kv[w]]) for w in kv.index_to_key]
        path.write_text("\n".join(lines) + "\n", encoding="utf8")
    else:
        path = tmp_path / "vectors.kv"
        kv.save(str(path))
    loaded = load_pretrained(path)
    assert loaded.vector_size == 6 and set(loaded.index_to_key) == set(kv.index_to_key)
    assert np.allclose(loaded["café"], kv["café"], atol=1e-5)


def test_load_pretrained_missing_file_says_what_it_expects(tmp_path):
    with pytest.raises(FileNotFoundError, match="GloVe"):
        load_pretrained(tmp_path / "nope.txt")


def test_datamodule_uses_pretrained_vectors(tmp_path, caplog):

    kv = toy_vectors()
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(" ".join([w] + [str(x) for x in kv[w]]) for w in kv.index_to_key) + "\n")
    with pytest.raises(ValueError, match="embedding_dim=6"):
        ShapesCaptionsDataModule(splits=(20, 5, 5), embedding_dim=400, word2vec={"pretrained": str(path)},
                                 cache_dir=str(tmp_path)).setup()
    dm = ShapesCaptionsDataModule(splits=(20, 5, 5), embedding_dim=6, word2vec={"pretrained": str(path)},
                                  cache_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="t2i"):
        dm.setup()
    assert "have no word vector" in caplog.text  # shapes words missing from the toy file: zeros
    assert not any((tmp_path / "word2vec").glob("*"))  # nothing trained
    vocab = dm.vocabulary
    assert dm.word_vectors.known[vocab.stoi["a"]] and not dm.word_vectors.known[vocab.stoi["circle"]]
