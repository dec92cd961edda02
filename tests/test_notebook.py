"""``notebooks/compare_variants.ipynb`` runs top to bottom, unedited, against a real small sweep."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

from tests.support.sweeps import run_sweep

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_variants.ipynb"
KERNEL = "imblab-test"


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def execute_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, experiment: str) -> list:
    """Run the committed notebook against ``experiment`` in the store at ``uri``; its outputs."""
    # A kernelspec of our own, pointing at this interpreter (the project's venv), found first on
    # JUPYTER_PATH: a "python3" kernel installed elsewhere on the machine cannot be picked up instead.
    spec = Path(write_kernel_spec(path=str(tmp_path / "jupyter" / "kernels" / KERNEL)))
    assert json.loads((spec / "kernel.json").read_text())["argv"][0] == sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("IMBLAB_TRACKING_URI", uri)
    monkeypatch.setenv("IMBLAB_EXPERIMENT", experiment)
    monkeypatch.setenv("IMBLAB_N_BOOT", "200")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def output_text(outputs: list) -> str:
    return "\n".join(
        o.get("text", "")
        + o.get("data", {}).get("text/markdown", "")
        + o.get("data", {}).get("text/html", "")
        for o in outputs
    )


@pytest.mark.slow
def test_notebook_executes_against_a_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = run_sweep(tmp_path / "store", "nb", samplers=("none",), policies=("best_f1", "fixed"))
    outputs = execute_notebook(tmp_path, monkeypatch, store.uri, store.experiment)
    text = output_text(outputs)
    assert f"nb-{store.sweep_id}: 2 runs" in text  # the latest sweep, found without IMBLAB_SWEEP
    assert "none × lgbm × best_f1" in text and "Δ vs best [95% CI]" in text and "tied" in text
    assert "p_beats_best" in text  # the numeric table
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4
