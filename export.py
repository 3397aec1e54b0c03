"""A trained generator as a folder to share (no pickle: safetensors + JSON + a model card):
python export.py ckpt_path=RUN/checkpoints/best.ckpt out=DIR
then t2i.load_generator(DIR), generate.py model=DIR or demo.py model=DIR."""
from t2i import stops

stops.exit_on_stop_signals()  # first: Ctrl-C / SIGTERM while torch loads give one line and exit 130 / 143

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from t2i.errors import user_errors  # noqa: E402
from t2i.pretrained import export  # noqa: E402
from t2i.quiet_libraries import quiet_libraries  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    stops.ready()  # imports done: a signal from now on is raised, so clean-up runs
    with user_errors():  # a known error: its one-line message and exit 2
        print(export(cfg.ckpt_path, cfg.out, trust=bool(cfg.trust_checkpoint)))


if __name__ == "__main__":
    main()
