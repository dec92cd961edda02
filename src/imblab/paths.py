"""Can this process write there? Asked up front, in microseconds, before slow work that would fail at the end
(an MLflow store MLflow retries for minutes, a cache, the output of ``imblab predict``)."""

from __future__ import annotations

import os
from pathlib import Path


def why_unwritable(path: Path, directory: bool = False) -> str | None:
    """Why ``path`` (a file, or a directory with ``directory=True``) cannot be created or written, or None.

    A file needs write access to itself when it exists and to its folder (new files, journals, atomic
    replaces); a folder that does not exist yet needs its nearest existing ancestor to be a writable
    directory. ``os.access`` answers for the real user, so it also sees read-only mounts.
    """
    path = path.expanduser().absolute()
    if path.exists():
        if directory and not path.is_dir():
            return f"{path} is a file, not a directory"
        if not directory and path.is_dir():
            return f"{path} is a directory"
        if not os.access(path, os.W_OK):
            return f"{path} is read-only"
    folder = path if directory else path.parent
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        if ancestor == folder:
            return f"directory {folder} is not writable"
        return f"cannot create {folder}: {ancestor} is not writable"
    return None
