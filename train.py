"""Train a model: python train.py experiment=mnist_dcgan [overrides...]"""
import hydra
from omegaconf import DictConfig

from t2i.errors import user_errors
from t2i.warnings import quiet_libraries


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    quiet_libraries()
    from t2i.run import train  # imported here: `--help` and config errors answer without loading torch

    with user_errors():  # a known error: its one-line message and exit 2 (HYDRA_FULL_ERROR=1: the traceback)
        metrics = train(cfg)
    # A sweeper (Optuna) optimises the value returned here.
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    main()
