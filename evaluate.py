"""Evaluate a checkpoint: python evaluate.py ckpt_path=PATH hydra.run.dir=DIR
Writes DIR/metrics.json and the model's pictures (samples.png, ...)."""
import hydra
from omegaconf import DictConfig

from t2i.errors import user_errors
from t2i.run import evaluate
from t2i.warnings import quiet_libraries


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    with user_errors():
        evaluate(cfg)


if __name__ == "__main__":
    main()
