"""All MLflow I/O lives here, so the science stays testable without it.

``layout``: tag, role and artifact names (defined once, read by compare, registry and serving);
``store``: which tracking store and experiment; ``runs``: one tracked run and what it records;
``artifacts``: what a training run writes and how it is read back; ``sweeps``: a multirun's parent.
"""
