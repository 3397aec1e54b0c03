"""A quiet, honest console: library noise filtered in one place (and nothing else), a
progress bar in generator steps, the end-of-run summary, --help listing experiments."""
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from t2i.callbacks.progress import StepProgressBar, progress_bars
from t2i.quiet_libraries import IGNORED_WARNINGS, quiet_libraries
from t2i.summary import summary_lines

ROOT = Path(__file__).resolve().parents[1]


def test_known_library_warnings_are_filtered_and_others_are_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn("You passed in a `val_dataloader` but have no `validation_step`. Skipping val loop.")
        warnings.warn("Using ModelCheckpoint with manual optimization and every_n_train_steps, but ...")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        warnings.warn("data.root does not exist")  # ours: must stay
    assert [str(w.message) for w in caught] == ["data.root does not exist"]
    assert len(IGNORED_WARNINGS) == 4  # each one has a why-comment in t2i/warnings.py


def test_advertisement_log_line_is_dropped():
    quiet_libraries()
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    seen = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    disabled, logger.disabled = logger.disabled, False  # a Hydra run earlier in this worker disables existing loggers
    try:
        logger.info("💡 Tip: try installing [litlogger](https://pypi.org/project/litlogger/)")
        logger.info("GPU available: False, used: False")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
    assert seen == ["GPU available: False, used: False"]


def test_progress_bar_counts_generator_steps():
    bar = StepProgressBar()
    bar._trainer = SimpleNamespace(max_steps=1500, max_epochs=-1, fast_dev_run=False)
    assert bar.total_train_batches == 1500
    assert bar._get_train_description(16) == "Epoch 16"  # Lightning's: "Epoch 16/-2"
    bar._trainer.max_epochs = 10
    assert bar._get_train_description(3) == "Epoch 3/9"
    assert progress_bars({"enable_progress_bar": False}) == []


def _run_folder(tmp_path: Path, best: bool) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "samples").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    if best:
        (run / "checkpoints" / "best.ckpt").write_bytes(b"")
    (run / "samples" / "step_000250.png").write_bytes(b"")
    (run / "samples.png").write_bytes(b"")
    return run


@pytest.mark.parametrize("best", [False, True])
def test_summary_names_folder_checkpoints_metrics_pictures_commands(tmp_path, best):
    run = _run_folder(tmp_path, best)
    metrics = {"fid": 12.345678, "precision": 0.93, "recall": 0.75, "fid_feature_extractor": "domain:shapes",
               "num_samples": 1000, "a_key_from_the_future": [1, 2], "r_precision/top1": 0.5}
    (run / "metrics.json").write_text(json.dumps(metrics))
    text = "\n".join(summary_lines(None, metrics, run))
    assert f"run folder   {run}" in text
    assert ("checkpoints/best.ckpt, checkpoints/last.ckpt" if best else "checkpoints/last.ckpt") in text
    assert "fid 12.35, precision 0.93, recall 0.75  (fid_feature_extractor=domain:shapes, num_samples=1000)" in text
    assert "(2 more): metrics.json" in text  # unknown keys are counted, not dropped silently
    assert "samples.png" in text and "samples/step_*.png (1" in text
    assert f"python evaluate.py ckpt_path={run / 'checkpoints' / ('best.ckpt' if best else 'last.ckpt')}" in text
    assert f"hydra.run.dir={run} ckpt_path=last" in text


def test_summary_without_checkpoints_or_metrics(tmp_path):
    text = "\n".join(summary_lines(None, {}, tmp_path))
    assert "checkpoints  none written" in text and "evaluate" not in text and "resume" not in text


def _train_py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_help_lists_experiments():
    out = _train_py("--help")
    assert out.returncode == 0
    experiments = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
    line = next(line for line in out.stdout.splitlines() if line.startswith("experiment: "))
    assert line == "experiment: " + ", ".join(experiments)
    assert "trainer.fast_dev_run=true" in out.stdout


@pytest.mark.parametrize("override,group", [("experiment=shapes_dcgn", "experiment"), ("model=dcgn", "model")])
def test_misspelt_name_lists_valid_ones(override, group):
    out = _train_py(override)
    assert out.returncode != 0
    assert f"Could not find '{group}/{override.split('=')[1]}'" in out.stderr
    valid = "shapes_dcgan" if group == "experiment" else "gan_cls"
    assert f"Available options in '{group}'" in out.stderr and valid in out.stderr


def test_summary_of_a_text_to_image_run_ends_with_a_generate_command(tmp_path):
    """`python train.py` (the default: text-to-image on captioned shapes) ends with a generate
    command; pasted into a shell as printed, it writes images for the caption."""
    run = tmp_path / "run"
    out = _train_py("data.splits=[128,64,64]", "data.embedding_dim=16", "data.word2vec.epochs=1", "model.ngf=8",
                    "model.ndf=8", "trainer.max_steps=2", "eval.every_n_steps=0", "eval.num_samples=64",
                    "eval.kid_subset_size=32", "trainer.enable_progress_bar=false", "logger=csv",
                    f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path / 'cache'}")
    assert out.returncode == 0, out.stderr[-2000:]
    block = (out.stdout + out.stderr).split("run finished")[-1].splitlines()
    generate = next(line for line in block if line.startswith("generate"))
    assert block[block.index(generate) + 1].startswith("---")  # the summary's last line
    command = generate.removeprefix("generate").strip() + f" hydra.run.dir={tmp_path / 'gen'}"
    assert 'text="a ' in command
    pasted = subprocess.run(command.replace("python ", f"{sys.executable} ", 1), shell=True, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    assert len(list((tmp_path / "gen").glob("*.png"))) == 9  # 8 images and their grid
