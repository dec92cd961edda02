"""A disk cache of fitted pipelines and out-of-fold scores.

The key is a hash of exactly the inputs that determine a ``FitResult``: the data fingerprint,
split, preprocess, sampler, model (incl. tuned parameters), CV settings and seed, plus the
versions of the libraries that do the fitting. The threshold policy, costs and tracking settings
are deliberately *not* in the key: a sweep over N policies fits once and reuses it N-1 times.

Concurrent jobs (Hydra's joblib launcher) that want the same key serialise on a file lock, so
the second waits for the first fit instead of repeating it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib

import imblab
from imblab.paths import why_unwritable

log = logging.getLogger(__name__)

_LIBS = ("scikit-learn", "imbalanced-learn", "lightgbm", "numpy")


def fit_key(fingerprint: str, inputs: dict[str, Any], model_params: dict[str, Any] | None = None) -> str:
    """Hash of the fit's inputs; identical inputs give the identical key.

    ``inputs``: plain-data config sections that determine the fit (split, preprocess, sampler, model
    estimator, cv, seed): see ``imblab.experiment.FIT_INPUTS``.
    """
    parts = {
        "data": fingerprint,
        **inputs,
        "model_params": model_params or {},
        "versions": {"imblab": imblab.__version__, **{lib: version(lib) for lib in _LIBS}},
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class FitCache:
    """``get_or_fit(key, fit)`` returns ``(result, hit)``; a disabled cache always fits.

    A cache directory this process cannot write (read-only, a file in the way) is not an error: the run fits
    without the cache, after one warning.
    """

    def __init__(self, directory: str | os.PathLike[str] | None, enabled: bool = True) -> None:
        self.enabled = bool(enabled and directory)
        self.dir = Path(directory).expanduser() if directory else None

    def _usable(self) -> bool:
        """Whether the directory can be written; if not, warn once and turn the cache off."""
        if not self.enabled or self.dir is None:
            return False
        reason = why_unwritable(self.dir, directory=True)
        if reason is None:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = f"cannot create {self.dir} ({exc.strerror})"
        if reason is not None:
            log.warning(
                "imblab: warning: fit cache off for this run: %s. Set cache.dir=<a writable folder>, or "
                "cache.enabled=false to silence this.",
                reason,
            )
            self.enabled = False
        return self.enabled

    def get_or_fit(self, key: str, fit: Callable[[], Any]) -> tuple[Any, bool]:
        if not self._usable() or self.dir is None:
            return fit(), False
        target = self.dir / f"{key}.joblib"
        with _locked(self.dir / f"{key}.lock"):
            if target.exists():
                try:
                    return joblib.load(target), True
                except Exception:  # a truncated or stale entry is refitted, never trusted
                    target.unlink(missing_ok=True)
            result = fit()
            # Write-then-rename so a crash never leaves a half-written entry behind.
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            os.close(fd)
            try:
                joblib.dump(result, tmp)
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
            return result, False
