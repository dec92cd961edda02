"""``imblab promote`` (temporary shim)."""

from imblab.registry import promote_main as main  # noqa: F401
