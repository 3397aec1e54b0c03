"""t2i: Lightning + Hydra toolkit for text- and context-conditioned image GANs."""

__version__ = "0.1.0"
