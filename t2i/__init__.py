"""t2i: Lightning + Hydra toolkit for text- and context-conditioned image GANs.

    g = t2i.load_generator("EXPORTED_DIR"); images = g(["a red flower"], n=8, seed=0)"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("load_generator", "Generator"):
        # deferred: `import t2i` stays light (train.py --help answers without loading torch);
        # the one function-level import of a t2i module, allowed for that reason
        from t2i import pretrained
        return getattr(pretrained, name)
    raise AttributeError(f"module 't2i' has no attribute {name!r}")
