"""Speed benchmark: python bench.py [--precision bf16-mixed] [--channels-last] [--compile] ...

Times, in one run on one machine:
  dcgan   the DCGAN training step (D + G) through the project's LightningModule and a
          Lightning Trainer, against the canonical loop of pytorch/examples' dcgan over
          the same Generator/Discriminator (interleaved A B B A ..., medians);
  t2i     the text-to-image models' step (--t2i-models, default gan_cls; e.g.
          gan_cls,df_gan,cond_dcgan_lstm to compare GAN-CLS, DF-GAN and the source report's model);
  loader  every data module's loader from its cache, in samples/s, against the fastest
          step measured (how many times faster the data comes than the step eats it);
  amp     on a GPU: bf16-mixed + channels_last against fp32 (Lightning step).
Prints a table and writes bench.json (flat keys such as `dcgan.ratio`). See docs/scaling.md.
Each part is one module of benchmarks/ (dcgan, text_to_image, source_model, loaders, steps, peak).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import warnings
from pathlib import Path

import pytorch_lightning  # noqa: F401 (creates its loggers, which quiet() sets to ERROR)
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import img_per_s  # noqa: E402,F401 (bench.img_per_s, as before)
from benchmarks.dcgan import bench_amp, bench_dcgan  # noqa: E402
from benchmarks.loaders import bench_loaders  # noqa: E402
from benchmarks.peak import peaks  # noqa: E402
from benchmarks.source_model import bench_seed  # noqa: E402
from benchmarks.steps import MODELS as STEP_MODELS  # noqa: E402
from benchmarks.steps import bench_steps  # noqa: E402
from benchmarks.text_to_image import T2I_MODEL, bench_t2i  # noqa: E402

PRECISIONS = ("32", "16-mixed", "bf16-mixed")


# ------------------------------------------------------------------ arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="32", choices=PRECISIONS)
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (nets and images)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator and discriminator")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=64, choices=[32, 64])
    p.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    p.add_argument("--repeats", type=int, default=5, help="interleaved measurements per path (median kept)")
    p.add_argument("--amp-compare", choices=["auto", "on", "off"], default="auto",
                   help="also time fp32 vs bf16-mixed+channels_last (auto: on a GPU only)")
    p.add_argument("--loaders", default="all",
                   help="comma-separated data configs (conf/data/<name>.yaml) and/or synthetic_jpeg; "
                        "'all': every data config plus synthetic_jpeg; 'none': skip")
    p.add_argument("--loader-batches", type=int, default=50, help="batches timed per loader (at most one epoch)")
    p.add_argument("--synthetic-images", type=int, default=512, help="JPEGs written for the synthetic_jpeg loader")
    p.add_argument("--data-dir", default=os.environ.get("T2I_DATA", str(ROOT / "data")),
                   help="paths.data_dir for real datasets (those absent are skipped)")
    p.add_argument("--data-root", action="append", default=[], metavar="NAME=DIR",
                   help="data.root for one loader, e.g. flickr=/data/flickr8k (repeatable)")
    p.add_argument("--cache-dir", default=os.environ.get("T2I_CACHE", str(ROOT / ".cache")))
    p.add_argument("--t2i-models", default=T2I_MODEL,
                   help="comma-separated model configs (conf/model/<name>.yaml) timed on captioned shapes, "
                        "e.g. gan_cls,df_gan,cond_dcgan_lstm; the first also fills t2i.img_per_s")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: peak,steps,dcgan,t2i,seed,loaders")
    p.add_argument("--step-models", default=",".join(STEP_MODELS),
                   help="training steps measured against the peak: " + ",".join(STEP_MODELS))
    p.add_argument("--step-precisions", default="32,bf16-mixed", help="precisions of the 'steps' part")
    p.add_argument("--step-repeats", type=int, default=1, help="timed measurements per model and precision (median)")
    p.add_argument("--seed-threads", default="1,2", help="thread counts the source report's-model profile runs at")
    p.add_argument("--seed-overrides", default="", help="space-separated overrides for the source report's model "
                                                        "(e.g. 'model.d_word_samples=4')")
    p.add_argument("--quick", action="store_true", help="tiny datasets (a smoke test, not a measurement)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench.json")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible")
    if args.device == "cpu" and args.precision == "16-mixed":
        p.error("--precision 16-mixed needs a GPU; on CPU use bf16-mixed or 32")
    if min(args.batch_size, args.steps, args.repeats) < 1 or args.warmup < 1:
        p.error("--batch-size, --steps and --repeats must be >= 1, --warmup >= 1")
    args.skip = {s for s in args.skip.split(",") if s}
    args.seed_threads = [int(t) for t in args.seed_threads.split(",") if t]
    args.step_models = [m for m in args.step_models.split(",") if m]
    args.step_precisions = [p for p in args.step_precisions.split(",") if p]
    if unknown := set(args.step_models) - set(STEP_MODELS):
        p.error(f"--step-models: unknown {sorted(unknown)}; choose from {','.join(STEP_MODELS)}")
    if unknown := set(args.step_precisions) - {"32", "bf16-mixed"}:
        p.error(f"--step-precisions: unknown {sorted(unknown)}; choose from 32,bf16-mixed")
    args.seed_overrides = args.seed_overrides.split()
    if any("=" not in r for r in args.data_root):
        p.error("--data-root takes NAME=DIR, e.g. --data-root coco=/data/coco")
    args.data_root = dict(r.split("=", 1) for r in args.data_root)
    return args


def quiet() -> None:
    """Lightning's banners and the single-process loader warnings are noise here."""
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("pytorch_lightning", "lightning", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*log_every_n_steps.*")


# ------------------------------------------------------------------ report
def memory(args, results: dict) -> None:
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if args.device == "cuda":
        results["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20


def table(results: dict) -> str:
    rows = []
    for key, value in results.items():
        if isinstance(value, list):
            value = ", ".join(f"{v:.1f}" for v in value)
        elif isinstance(value, float):
            value = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        rows.append((key, str(value)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    quiet()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    results: dict = {
        "config.device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "config.torch_threads": torch.get_num_threads(), "config.torch": torch.__version__,
        "config.precision": args.precision, "config.channels_last": args.channels_last,
        "config.compile": args.compile, "config.batch_size": args.batch_size, "config.image_size": args.image_size,
        "config.steps": args.steps, "config.warmup": args.warmup, "config.repeats": args.repeats,
    }
    if not {"peak", "steps"} <= args.skip:  # the steps are read against the peak
        results.update(peaks(sorted({1, torch.get_num_threads()}), n=256 if args.quick else 2048))
        print("peak: " + ", ".join(f"{k} {v:.1f}" for k, v in results.items() if k.startswith("peak.")), flush=True)
    if "steps" not in args.skip:
        bench_steps(args, results, results, args.step_models)
    if "dcgan" not in args.skip:
        bench_dcgan(args, results)
    if args.amp_compare == "on" or (args.amp_compare == "auto" and args.device == "cuda"):
        bench_amp(args, results)
    if "t2i" not in args.skip:
        bench_t2i(args, results)
    if "seed" not in args.skip:
        bench_seed(args, results)
    if "loaders" not in args.skip:
        bench_loaders(args, results)
    memory(args, results)
    print("\n" + table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {args.out}")
    return results


if __name__ == "__main__":
    main()
