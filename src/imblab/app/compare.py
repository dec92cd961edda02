"""``imblab compare`` (temporary shim while the report package is reorganised)."""

from imblab.compare import main  # noqa: F401
