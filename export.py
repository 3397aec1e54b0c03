"""A trained generator as a folder to share (no pickle: safetensors + JSON + a model card):
python export.py ckpt_path=RUN/checkpoints/best.ckpt out=DIR
then t2i.load_generator(DIR), generate.py model=DIR or demo.py model=DIR."""
import hydra
from omegaconf import DictConfig

from t2i.errors import user_errors
from t2i.pretrained import export
from t2i.warnings import quiet_libraries


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    with user_errors():  # a known error: its one-line message and exit 2
        print(export(cfg.ckpt_path, cfg.out, trust=bool(cfg.trust_checkpoint)))


if __name__ == "__main__":
    main()
