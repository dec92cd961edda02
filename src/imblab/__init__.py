"""imblab: an experiment lab for imbalanced classification."""

__version__ = "0.1.0"
