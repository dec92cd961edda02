"""``imblab predict`` (temporary shim)."""

from imblab.serving import predict_main as main  # noqa: F401
