"""Train a model: python train.py experiment=mnist_dcgan [overrides...]"""
from t2i import stops

stops.exit_on_stop_signals()  # first: Ctrl-C / SIGTERM while torch loads give one line and exit 130 / 143

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from t2i.errors import user_errors  # noqa: E402
from t2i.quiet_libraries import quiet_libraries  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    quiet_libraries()
    from t2i.run import train  # imported here: `--help` and config errors answer without loading torch
    stops.ready()  # imports done: a signal from now on is raised, so clean-up runs

    with user_errors():  # a known error: its one-line message and exit 2 (HYDRA_FULL_ERROR=1: the traceback)
        metrics = train(cfg)
    # A sweeper (Optuna) optimises the value returned here.
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    main()
