"""The MLflow UI as a person sees it: `mlflow server` on loopback, Debian's Chromium driven by Playwright.

Nothing here downloads a browser: Playwright launches ``/usr/bin/chromium`` (``.ci/run`` installs Debian's
package). Without it the browser tests skip on a developer's machine and fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import spawn, stop_group, wait_for_health
from tests.support.serving import free_port

CHROMIUM = Path("/usr/bin/chromium")


def require_browser() -> None:
    """Skip (fail under CI=true) unless Chromium and Playwright's Python package are installed."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -e '.[dev]')")
    if missing:
        message = f"browser test needs {' and '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def mlflow_ui(store_uri: str, root: Path, timeout: float = 180.0) -> Iterator[str]:
    """``mlflow server`` on ``store_uri`` (loopback, its own process group); yields its base URL once
    ``/health`` answers; stops the whole group on the way out."""
    port = free_port()
    argv = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log_path = root / "mlflow-server.log"
    with open(log_path, "wb") as log:
        proc = spawn(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(proc, f"{base}/health", log_path, "mlflow server", timeout)
            yield base
        finally:
            stop_group(proc)


@contextlib.contextmanager
def chromium_page(width: int = 1800, height: int = 1100) -> Iterator[Any]:
    """A headless Chromium page (Debian's binary, never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(90_000)  # a React app on a loaded 2-core machine
            yield page
        finally:
            browser.close()
