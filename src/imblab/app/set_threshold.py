"""``imblab set-threshold`` (temporary shim)."""

from imblab.registry import set_threshold_main as main  # noqa: F401
