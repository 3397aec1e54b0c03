"""export.py and t2i.load_generator: a checkpoint's generator as a folder of safetensors +
JSON that loads in a fresh process without the run, the data or any pickle, and draws
the checkpoint's pixels."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import t2i
from t2i.generate import generate_from_checkpoint
from t2i.pretrained import export
from t2i.run import load_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ["data.splits=[128,32,32]", "data.embedding_dim=16", "data.word2vec.epochs=1", "data.batch_size=16",
          "model.ngf=4", "model.ndf=4", "trainer.max_steps=2", "trainer.enable_progress_bar=false", "logger=csv",
          "evaluate_after_fit=false"]
MODELS = {
    "gan_cls": ["experiment=shapes_t2i", "model.ema_decay=0.5"],
    "df_gan": ["experiment=shapes_dfgan", "model.text_dim=8", "model.ema_decay=0.5"],
    "cond_dcgan_lstm": ["experiment=shapes_cond_dcgan_lstm", "model.map_channels=2", "model.hidden_channels=2"],
    "dcgan": ["experiment=shapes_dcgan", "data.splits=[128,32,32]", "data.batch_size=16", "model.ngf=4",
              "model.ndf=4", "trainer.max_steps=2", "trainer.enable_progress_bar=false", "logger=csv",
              "evaluate_after_fit=false"],
}
CAPTIONS = ["a large filled circle in the top left", "a small outlined square in the bottom right"]
# a fresh process that must not unpickle anything: pickle and torch.load raise
FRESH = """
import pickle, sys, torch
import t2i, t2i.pretrained  # the library imported first; then loading may not unpickle anything
def refuse(*a, **k): raise AssertionError("loading an exported generator unpickled something")
pickle.load = pickle.loads = torch.load = refuse
from safetensors.torch import save_file
g = t2i.load_generator(sys.argv[1])
captions = {captions}
images = g.generate(captions or None, n=3, seed=7)
save_file({{"images": images.contiguous()}}, sys.argv[2])
pil = g(captions or None, n=3, seed=7)
assert len(pil) == images.shape[0] * 3 and pil[0].size == (images.shape[-1], images.shape[-1])
print("examples", len(g.examples))
"""


@pytest.fixture(autouse=True)
def one_thread():
    """The fresh processes run on one thread (OMP_NUM_THREADS=1): so does this one, since float
    sums differ with the thread count and the pixels are compared exactly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def checkpoint_images(ckpt: Path, captions: list[str], n: int, seed: int) -> torch.Tensor:
    """What the checkpoint's own model draws (generate.py's path)."""
    model, datamodule, _ = load_checkpoint(str(ckpt))
    if not captions:
        model.eval()
        with torch.no_grad():
            return model.generate({}, model.draw_noise(n, seed))[None]
    return model.images_for_text(datamodule.encode(captions), n, seed=seed)


@pytest.mark.parametrize("architecture", [a if a == "gan_cls" else pytest.param(a, marks=pytest.mark.slow)
                                          for a in MODELS])  # ~15 s each on 2 idle cores: GAN-CLS in the fast suite
def test_export_loads_in_a_fresh_process_with_the_checkpoints_pixels(make_cfg, tmp_path, architecture):
    overrides = MODELS[architecture] + ([] if architecture == "dcgan" else SHAPES)
    train(make_cfg(overrides))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    folder = export(ckpt, tmp_path / "exported")
    captions = [] if architecture == "dcgan" else CAPTIONS
    expected = checkpoint_images(ckpt, captions, n=3, seed=7)
    # the export holds no pickle: safetensors, JSON, markdown and PNG only
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "samples.png"} <= names
    assert all(p.suffix in (".safetensors", ".json", ".md", ".png") for p in folder.iterdir()), names
    assert not [p for p in folder.iterdir() if p.read_bytes()[:2] in (b"\x80\x02", b"\x80\x04", b"PK")]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == architecture and config["step"] == 2
    weights = load_file(folder / "model.safetensors")
    assert not any(k.startswith(("discriminator", "generator_ema")) for k in weights)  # G's own keys only
    if architecture != "dcgan":
        assert config["text"]["embedding_dim"] == 16 and config["examples"]
        assert {"vocabulary.json", "word_vectors.safetensors"} <= names
    if config["ema"]:  # the average's weights, not the live generator's
        model, _, _ = load_checkpoint(str(ckpt))
        key = next(k for k, v in weights.items() if k.endswith("weight") and v.numel() > 1)
        assert torch.equal(weights[key], model.generator_ema.state_dict()[key])
        assert not torch.equal(weights[key], model.generator.state_dict()[key])
    shutil.rmtree(tmp_path / "run")  # without the run folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", FRESH.format(captions=captions), str(folder), str(elsewhere / "x.st")],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.equal(load_file(elsewhere / "x.st")["images"], expected)


def test_model_card_generate_py_and_two_line_api(make_cfg, tmp_path):
    train(make_cfg(MODELS["gan_cls"] + SHAPES + ["evaluate_after_fit=true", "eval.num_samples=32",
                                                  "eval.kid_subset_size=10", "eval.feature_extractor=domain"]))
    run = tmp_path / "run"
    folder = export(run / "checkpoints" / "last.ckpt", tmp_path / "exported")
    metrics = json.loads((run / "metrics.json").read_text())
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: t2i\npipeline_tag: text-to-image")
    fid_row = next(line for line in card.splitlines() if line.startswith("| fid |"))
    assert f"{metrics['fid']:.4g}" in fid_row and metrics["fid_protocol"].replace("|", "\\|") in fid_row
    assert "alignment_accuracy" in card and "![samples](samples.png)" in card
    assert "python export.py ckpt_path=" in card
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    g = t2i.load_generator(folder)
    images = g(["a large filled circle in the top left"], n=8, seed=0)
    assert len(images) == 8 and images[0].mode == "L"
    # generate.py model=DIR writes the pictures generate.py ckpt_path= writes
    cfg = make_cfg([f"model_dir={folder}", f"text={CAPTIONS[0]}", "n=4"], name="generate", out=tmp_path / "from_model")
    from_model = generate_from_checkpoint(cfg, g)
    cfg = make_cfg([f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"text={CAPTIONS[0]}", "n=4"], name="generate",
                   out=tmp_path / "from_ckpt")
    from_ckpt = generate_from_checkpoint(cfg)
    assert [p.name for p in from_model] == [p.name for p in from_ckpt]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(from_model, from_ckpt))


def test_not_an_export_and_unknown_architecture_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="export.py"):
        t2i.load_generator(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "os.system", "model": {}}))
    with pytest.raises(ValueError, match="unknown architecture 'os.system'"):
        t2i.load_generator(tmp_path)
