"""Benchmarks of the ib_insync adapter against the simulated gateway (``python -m benchmarks``)."""
