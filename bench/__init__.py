"""Benchmarks and the soak run: ``python -m bench`` and ``python -m bench.soak``."""
