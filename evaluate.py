"""Evaluate a checkpoint: python evaluate.py ckpt_path=PATH hydra.run.dir=DIR
Writes DIR/metrics.json and the model's pictures (samples.png, ...)."""
from t2i import stops

stops.exit_on_stop_signals()  # first: Ctrl-C / SIGTERM while torch loads give one line and exit 130 / 143

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from t2i.errors import user_errors  # noqa: E402
from t2i.quiet_libraries import quiet_libraries  # noqa: E402
from t2i.run import evaluate  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    stops.ready()  # imports done: a signal from now on is raised, so clean-up runs
    with user_errors():
        evaluate(cfg)


if __name__ == "__main__":
    main()
