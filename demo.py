"""A web demo of a generator: python demo.py model=EXPORTED_DIR (or ckpt_path=RUN/checkpoints/best.ckpt)
[port=7860], then open http://127.0.0.1:7860. Needs Gradio: pip install -r requirements-demo.txt"""
import sys

import hydra
from omegaconf import DictConfig

from t2i.demo import launch
from t2i.errors import ConfigError, user_errors
from t2i.pretrained import ExportedGenerator, model_override
from t2i.quiet_libraries import quiet_libraries


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    with user_errors():  # a known error: its one-line message and exit 2
        if bool(cfg.get("model_dir")) == bool(cfg.get("ckpt_path")):
            raise ConfigError("demo.py needs one of model=EXPORTED_DIR or ckpt_path=RUN/checkpoints/best.ckpt")
        generator = ExportedGenerator.from_pretrained(cfg.model_dir) if cfg.get("model_dir") \
            else ExportedGenerator.from_checkpoint(cfg.ckpt_path, trust=bool(cfg.trust_checkpoint))
    launch(generator, port=cfg.port, host=cfg.host, share=cfg.share)


if __name__ == "__main__":
    sys.argv = model_override(sys.argv)
    main()
