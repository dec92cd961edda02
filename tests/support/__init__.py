"""Helpers shared by tests, benchmarks and notebooks (not part of the imblab package)."""
