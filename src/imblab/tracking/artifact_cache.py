"""Artifacts of finished runs kept on disk, so ``imblab compare`` downloads a run's scores once, not
once per call.

Only artifacts behind a tracking server or in object storage (``mlflow-artifacts:``, ``s3:``, ``http:``,
...) are cached: a local artifact store is read in place. Only FINISHED runs: their artifacts no longer
change (a RUNNING run may still log). The copy is ``<cache>/artifacts/<run id>/<artifact path>``
(``$IMBLAB_CACHE_DIR``, else ``~/.cache/imblab``). A download goes to a temporary directory beside
it and is renamed into place: a reader never sees half a copy, and of two processes downloading at
once, one copy wins.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Run

CACHE_ENV = "IMBLAB_CACHE_DIR"
LOCAL_SCHEMES = ("", "file")


def cache_root() -> Path:
    """``$IMBLAB_CACHE_DIR/artifacts``, else ``~/.cache/imblab/artifacts``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "imblab") / "artifacts"


def cacheable(run: Run) -> bool:
    """A FINISHED run whose artifacts are not local files."""
    scheme = urlparse(run.info.artifact_uri or "").scheme
    return run.info.status == "FINISHED" and scheme not in LOCAL_SCHEMES


def cached_path(run: Run, path: str) -> Path:
    return cache_root() / run.info.run_id / path


@contextlib.contextmanager
def local_artifact(run: Run, path: str) -> Iterator[Path]:
    """A local copy of the run's artifact ``path`` (a file or a directory) for the ``with`` block.

    From the cache when the run is :func:`cacheable` (downloaded into it the first time), else a
    temporary download removed afterwards.
    """
    uri = f"{run.info.artifact_uri.rstrip('/')}/{path}"
    if not cacheable(run):
        with tempfile.TemporaryDirectory(prefix="imblab-artifact-") as tmp:
            yield Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        return
    target = cached_path(run, path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".download-", dir=target.parent)
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            with contextlib.suppress(OSError):  # another process put its copy there first
                local.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    yield target
