"""imblab: an experiment lab for imbalanced classification."""

from imblab.process import guard_worker

__version__ = "0.1.0"

# A worker process of an imblab command (it inherited $IMBLAB_WORKER_OF) dies with its parent.
guard_worker()
