"""Running a command to which file permissions apply, even when the tests run as root.

Root writes to read-only files and folders (``CAP_DAC_OVERRIDE``), so a test of "the store is read-only"
would pass for the wrong reason or not at all. Under root the command runs through ``setpriv`` with
every capability dropped: still uid 0, still the owner of the test's files, but bound by their modes.
"""

from __future__ import annotations

import os
import shutil
import subprocess

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
