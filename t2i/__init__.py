"""t2i: Lightning + Hydra toolkit for text- and context-conditioned image GANs.

    g = t2i.load_generator("EXPORTED_DIR"); images = g(["a red flower"], n=8, seed=0)"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("load_generator", "ExportedGenerator", "Generator"):
        # PEP 562 lazy attribute: `import t2i` stays light (train.py --help loads no torch)
        from t2i import pretrained  # optional here: only t2i.load_generator needs it
        return getattr(pretrained, name)
    raise AttributeError(f"module 't2i' has no attribute {name!r}")
