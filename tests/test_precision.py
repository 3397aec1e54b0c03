"""trainer.precision=auto: bf16-mixed only where the CPU computes bf16 natively, and the
precision a run used recorded in its checkpoint, metrics.json and summary."""
import json

import pytest
import torch

from t2i.precision import cpu_flags, native_bf16_cpu, resolve_precision
from t2i.run import evaluate_model, train
from t2i.summary import summary_lines

ZEN4 = {"fpu", "avx2", "avx512f", "avx512_bf16"}
ZEN2 = {"fpu", "avx", "avx2", "fma"}


def test_auto_is_bf16_only_with_native_bf16():
    assert resolve_precision("auto", "cpu", ZEN4)[0] == "bf16-mixed"
    assert resolve_precision("auto", "cpu", {"amx_bf16", "amx_tile"})[0] == "bf16-mixed"
    assert resolve_precision("auto", "cpu", {"fp", "asimd", "bf16"})[0] == "bf16-mixed"  # Arm
    precision, why = resolve_precision("auto", "cpu", ZEN2)
    assert precision == "32" and "no native bf16" in why
    assert resolve_precision("auto", "cpu", set())[0] == "32"  # no /proc/cpuinfo: the safe side


def test_an_explicit_precision_is_kept_whatever_the_cpu():
    assert resolve_precision(32, "cpu", ZEN4)[0] == "32"
    assert resolve_precision("bf16-mixed", "cpu", ZEN2)[0] == "bf16-mixed"


def test_cpu_flags_read_x86_and_arm_layouts(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16"} and native_bf16_cpu(cpu_flags(str(x86)))
    assert native_bf16_cpu(cpu_flags(str(arm)))
    assert cpu_flags(str(tmp_path / "none")) == set()


@pytest.mark.parametrize("flags, expected", [(ZEN4, "bf16-mixed"), (ZEN2, "32")])
def test_a_run_stores_the_precision_it_used(make_cfg, tmp_path, monkeypatch, flags, expected):
    monkeypatch.setattr("t2i.precision.cpu_flags", lambda path="/proc/cpuinfo": flags)
    cfg = make_cfg(["experiment=shapes_dcgan", "data.splits=[64,32,32]", "model.ngf=8", "model.ndf=8",
                    "trainer.max_steps=2", "trainer.enable_progress_bar=false", "eval.every_n_steps=0",
                    "callbacks.sample_grid.every_n_steps=1000", "evaluate_after_fit=false",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert cfg.trainer.precision == "auto"
    train(cfg)
    stored = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu",
                        weights_only=False)["t2i_config"]
    assert str(stored["trainer"]["precision"]) == expected


class Scored:
    """Stands in for a model whose evaluation found nothing to score: what is tested here
    is what evaluate_model adds to the metrics, not a model's numbers."""

    def evaluate(self, datamodule, eval_cfg, out_dir):
        return {}


def test_metrics_json_and_summary_say_the_precision(make_cfg, tmp_path):
    cfg = make_cfg(["trainer.precision=bf16-mixed"])
    metrics = evaluate_model(Scored(), None, cfg, tmp_path, checkpoint="last", step=3)
    assert json.loads((tmp_path / "metrics.json").read_text())["trainer_precision"] == "bf16-mixed"
    assert "precision    trained in bf16-mixed (trainer.precision)" in summary_lines(cfg, metrics, tmp_path)
