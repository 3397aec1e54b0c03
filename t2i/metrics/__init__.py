"""Evaluation metrics: FID/KID/IS (Inception or clearly labelled domain features),
domain attribute classifiers, text-image alignment."""
