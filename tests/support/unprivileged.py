"""Running a command to which file permissions apply, even when the tests run as root.

Root writes to read-only files and folders (``CAP_DAC_OVERRIDE``), so a test of "the store is read-only"
would pass for the wrong reason or not at all. Under root the command runs through ``setpriv`` with
every capability dropped: still uid 0, still the owner of the test's files, but bound by their modes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DROP_ALL = ("--inh-caps=-all", "--bounding-set=-all", "--")


def unprivileged() -> list[str]:
    """The command prefix (empty for a normal user); skips the test when root cannot drop its capabilities."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None or subprocess.run([setpriv, *DROP_ALL, "true"], check=False).returncode != 0:
        pytest.skip("running as root without a working setpriv (util-linux): cannot make a file read-only")
    return [setpriv, *DROP_ALL]


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """``paths`` (files or folders) read-only inside the block, their modes back after it."""
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
