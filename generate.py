"""Images for any caption from a text-to-image checkpoint:
python generate.py ckpt_path=RUN/checkpoints/last.ckpt text="a large filled circle in the top left" n=8
python generate.py model=EXPORTED_DIR text="..." n=8   (a folder written by export.py)
Writes <slug>-<hash>_<i>.png and the grid <slug>-<hash>.png into hydra.run.dir (never
overwriting a file), and prints each path once. Unknown words are a
warning (they count as zero vectors), not an error. No dataset is needed: the
vocabulary and word vectors are stored in the checkpoint."""
import sys

from t2i import stops

stops.exit_on_stop_signals()  # first: Ctrl-C / SIGTERM while torch loads give one line and exit 130 / 143

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from t2i.errors import user_errors  # noqa: E402
from t2i.generate import generate_from_checkpoint  # noqa: E402
from t2i.pretrained import load_generator, model_override  # noqa: E402
from t2i.quiet_libraries import quiet_libraries  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    stops.ready()  # imports done: a signal from now on is raised, so clean-up runs
    with user_errors():
        generator = load_generator(cfg.model_dir) if cfg.get("model_dir") else None
        for path in generate_from_checkpoint(cfg, generator):
            print(path)


if __name__ == "__main__":
    sys.argv = model_override(sys.argv)
    main()
