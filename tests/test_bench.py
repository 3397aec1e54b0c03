"""bench.py on tiny settings: every documented key of bench.json, consistent figures,
the mixed-precision path on CPU, and clear errors. (Speed goals are measured by the
benchmark itself, not asserted here: timings on a shared CI machine are noise.)"""
from __future__ import annotations

import json
import math

import pytest
import torch

import bench

TINY = ["--quick", "--batch-size", "8", "--image-size", "32", "--steps", "2", "--warmup", "1", "--repeats", "2",
        "--threads", "1"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """--threads 1 (fast on a busy CI machine) must not leak into other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def paths(tmp_path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "cache"), "--data-dir", str(tmp_path / "data"),
            "--out", str(tmp_path / "bench.json")]


def test_bench_json_has_the_documented_keys(tmp_path):
    results = bench.main(TINY + paths(tmp_path) + ["--loaders", "shapes,synthetic_jpeg,mnist", "--skip", "steps"])
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for key in ("dcgan.lightning_img_per_s", "dcgan.plain_img_per_s", "dcgan.ratio", "t2i.img_per_s",
                "loader.shapes.samples_per_s", "loader.synthetic_jpeg.samples_per_s", "peak_rss_mb"):
        assert key in saved, key
    assert len(saved["dcgan.lightning_runs"]) == len(saved["dcgan.plain_runs"]) == 2
    assert all(v > 0 and math.isfinite(v) for v in saved["dcgan.lightning_runs"] + saved["dcgan.plain_runs"])
    assert saved["dcgan.ratio"] == pytest.approx(saved["dcgan.lightning_img_per_s"] / saved["dcgan.plain_img_per_s"])
    # the text-to-image step is timed: an error in it fails here (bench.json keeps it as t2i.error)
    assert "t2i.error" not in saved, saved["t2i.error"]
    assert saved["t2i.img_per_s"] > 0 and saved["t2i.model"] == "gan_cls"
    # loaders: timed from their caches, compared with the fastest step
    step = saved["loader.step_img_per_s"]
    assert step == max(v for k, v in saved.items()
                       if k in ("dcgan.lightning_img_per_s", "dcgan.plain_img_per_s", "t2i.img_per_s") and v)
    for name in ("shapes", "synthetic_jpeg"):
        assert saved[f"loader.{name}.samples_timed"] > 0
        assert saved[f"loader.{name}.x_step"] == pytest.approx(saved[f"loader.{name}.samples_per_s"] / step)
    assert saved["loader.synthetic_jpeg.cache_build_s"] > saved["loader.synthetic_jpeg.cache_open_s"]
    # a dataset that is not on disk is skipped with the reader's own message, not fatal
    assert "MNIST" in saved["loader.mnist.skipped"] and "loader.mnist.samples_per_s" not in saved
    assert saved["peak_rss_mb"] > 0 and "peak_gpu_mem_mb" not in saved  # CPU run


@pytest.mark.slow
def test_steps_are_read_against_the_peak_of_their_dtype(tmp_path):
    """Part 'steps': counted FLOPs over wall time, as a share of the same dtype's matrix
    peak at the same thread count, for a Lightning GAN and a plain training loop."""
    results = bench.main(TINY + paths(tmp_path) + ["--skip", "dcgan,t2i,seed,loaders", "--step-models",
                                                  "dcgan,domain_classifier", "--step-precisions", "32,bf16-mixed"])
    for dtype in ("fp32", "bf16"):
        assert results[f"peak.{dtype}.t1.gflops"] > 0
    for model in ("dcgan", "domain_classifier"):
        for precision, dtype in (("32", "fp32"), ("bf16-mixed", "bf16")):
            key = f"steps.{model}.{precision}"
            assert results[f"{key}.gflop_per_step"] > 0 and results[f"{key}.s_per_step"] > 0
            assert results[f"{key}.gflops"] == pytest.approx(results[f"{key}.gflop_per_step"]
                                                             / results[f"{key}.s_per_step"])
            assert results[f"{key}.pct_peak"] == pytest.approx(results[f"{key}.gflops"]
                                                               / results[f"peak.{dtype}.t1.gflops"])
        assert results[f"steps.{model}.bf16_speedup"] == pytest.approx(
            results[f"steps.{model}.32.s_per_step"] / results[f"steps.{model}.bf16-mixed.s_per_step"])
    # the same step counts the same FLOPs in either precision (autocast changes dtypes, not work)
    assert results["steps.dcgan.32.gflop_per_step"] == pytest.approx(results["steps.dcgan.bf16-mixed.gflop_per_step"])


def test_an_unknown_step_model_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--step-models", "gan_cls,no_such"])
    assert "unknown ['no_such']" in capsys.readouterr().err


@pytest.mark.slow
def test_bf16_channels_last_path_runs_on_cpu(tmp_path):
    results = bench.main(TINY + paths(tmp_path) + ["--precision", "bf16-mixed", "--channels-last",
                                                  "--amp-compare", "on", "--skip", "t2i,loaders,steps",
                                                  "--repeats", "1"])
    assert results["config.precision"] == "bf16-mixed" and results["config.channels_last"]
    for key in ("dcgan.lightning_img_per_s", "dcgan.plain_img_per_s", "dcgan.fp32_img_per_s",
                "dcgan.bf16_channels_last_img_per_s"):
        assert results[key] > 0
    assert results["dcgan.amp_speedup"] == pytest.approx(
        results["dcgan.bf16_channels_last_img_per_s"] / results["dcgan.fp32_img_per_s"])


@pytest.mark.parametrize("argv, message", [
    (["--precision", "16-mixed", "--device", "cpu"], "16-mixed needs a GPU"),
    (["--steps", "0"], "must be >= 1"),
    (["--data-root", "coco"], "NAME=DIR"),
])
def test_bad_options_fail_with_the_fix(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err


def test_img_per_s_excludes_the_warm_up():
    # 2 warm-up steps (slow), then 3 steps of 0.5 s each at batch 4: 8 img/s
    stamps = [10.0, 20.0, 20.5, 21.0, 21.5]
    assert bench.img_per_s(stamps, warmup=2, batch_size=4) == pytest.approx(8.0)


@pytest.mark.slow
def test_t2i_models_are_timed_side_by_side(tmp_path):
    """--t2i-models gan_cls,df_gan: one img/s per model (the GPU comparison's script);
    the first model still fills t2i.img_per_s; an unknown config is skipped, not fatal."""
    results = bench.main(TINY + paths(tmp_path) + ["--skip", "dcgan,loaders,steps", "--repeats", "1",
                                                  "--t2i-models", "gan_cls,df_gan,no_such_model"])
    assert results["t2i.model"] == "gan_cls"
    assert results["t2i.img_per_s"] == results["t2i.gan_cls.img_per_s"] > 0
    assert results["t2i.df_gan.img_per_s"] > 0
    assert results["t2i.no_such_model.img_per_s"] is None
