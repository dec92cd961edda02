"""Panel test fixtures: the real nlswork file (shared/ beside the checkout, or $IMBLAB_NLSWORK_DIR) and
small synthetic panels with known structure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imblab.panel.dataset import Panel
from imblab.panel.examples import Examples, build_examples
from imblab.panel.nlswork import NLSWORK_ENV, NLSWORK_FILE, load_nlswork
from imblab.panel.synthetic import make_panel_synthetic

_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "nlswork"
NLSWORK_DIR = Path(os.environ[NLSWORK_ENV]) if os.environ.get(NLSWORK_ENV) else _SHARED
HAVE_NLSWORK = (NLSWORK_DIR / NLSWORK_FILE).is_file()
# On a developer's machine without the shared copy these tests skip; in CI (CI=true) a missing file fails,
# so a green CI always means the real panel was tested.
if os.environ.get("CI") == "true" and not HAVE_NLSWORK:
    raise RuntimeError(f"CI: nlswork.csv not found in {NLSWORK_DIR}; set {NLSWORK_ENV}")
needs_nlswork = pytest.mark.skipif(
    not HAVE_NLSWORK, reason=f"nlswork.csv not found in {NLSWORK_DIR} (set {NLSWORK_ENV} to its directory)"
)


@pytest.fixture(autouse=True)
def _no_nlswork_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the caller's nlswork directory unless it sets one itself."""
    monkeypatch.delenv(NLSWORK_ENV, raising=False)


@pytest.fixture(scope="session")
def nlswork() -> Panel:
    if not HAVE_NLSWORK:
        pytest.skip(f"nlswork.csv not found in {NLSWORK_DIR}")
    return load_nlswork(dir=str(NLSWORK_DIR))


@pytest.fixture(scope="session")
def nlswork_examples(nlswork: Panel) -> Examples:
    return build_examples(nlswork)


@pytest.fixture(scope="session")
def synthetic() -> Panel:
    return make_panel_synthetic(n_persons=600, seed=0)


@pytest.fixture(scope="session")
def synthetic_examples(synthetic: Panel) -> Examples:
    return build_examples(synthetic)
