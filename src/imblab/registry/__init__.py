"""The model registry: promote the best run behind a champion/challenger gate, re-threshold a version.

``gate``: the decision rule, pure (no MLflow); ``versions``: looking registered versions and their
runs up; ``promote``: the gate's data and the promotion itself; ``threshold``: a new version with a
re-chosen threshold. Versions are never modified except for tags and aliases; nothing is deleted.
"""
