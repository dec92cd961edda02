"""``imblab serve`` (temporary shim)."""

from imblab.serving import serve_main as main  # noqa: F401
