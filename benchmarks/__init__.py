"""Benchmarks that bench.py runs as parts (one module per benchmark)."""
