"""One promotion at a time per registered model: a lock keyed by model registry store + model name.

``promote`` reads the registry (does the run have a version? who is champion?), decides, then writes
(register, tag, move aliases). Two promotes interleaving there would both register the run and both
call themselves first champion, so everything from the first read to the last write happens under
this lock, and every read is done after taking it.

What serialises, by store:

* **local stores** (``sqlite:///...``, ``file:...``): an OS file lock (``flock`` through the
  ``filelock`` package) in ``.imblab-locks/`` beside the database or store directory. Every process
  using that store on that machine (or on a shared filesystem with working ``flock``) serialises. The
  OS releases the lock when its holder dies, so a crashed promote leaves no stale lock behind.
* **tracking servers and databases** (``http(s)://``, ``databricks``, ``postgresql://``, ...): MLflow's
  registry has no compare-and-set, and imblab has no lock the server enforces. The lock is then a file
  under ``$IMBLAB_CACHE_DIR/locks`` (default ``~/.cache/imblab/locks``): promotes from the same machine
  serialise; promotes from different machines do NOT, and may still register a run twice or move
  ``champion`` on a stale view. Run promotions of one model name from one place (e.g. a CI job with a
  concurrency group).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import filelock

from imblab.errors import ImblabError

log = logging.getLogger(__name__)

LOCK_DIR = ".imblab-locks"
WAITING = "waiting for another promotion"  # logged when the lock is busy (tests line promotes up on it)
DEFAULT_TIMEOUT = 600.0  # seconds: a promotion that legitimately holds the lock takes seconds to a minute


def _local_store_dir(registry_uri: str) -> Path | None:
    """The directory of a local store (where its lock lives), or None for a server or remote database."""
    parsed = urlparse(registry_uri)
    if parsed.scheme == "sqlite" and parsed.path not in ("", "/:memory:"):
        return Path(unquote(parsed.path)).resolve().parent
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    if parsed.scheme == "" and registry_uri:  # a bare path is a file store
        return Path(registry_uri).resolve()
    return None


def lock_path(registry_uri: str, model_name: str) -> Path:
    """The lock file of promotions of ``model_name`` in the registry at ``registry_uri``."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name)[:60]
    local = _local_store_dir(registry_uri)
    key = f"{registry_uri}\n{model_name}" if local is None else model_name
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    if local is not None:
        return local / LOCK_DIR / f"promote-{readable}-{digest}.lock"
    cache = Path(os.environ.get("IMBLAB_CACHE_DIR") or Path.home() / ".cache" / "imblab").expanduser()
    return cache / "locks" / f"promote-{readable}-{digest}.lock"


@contextlib.contextmanager
def promotion_lock(registry_uri: str, model_name: str, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Path]:
    """Hold the promotion lock of ``model_name``; says so when another promotion holds it first."""
    path = lock_path(registry_uri, model_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImblabError(
            f"cannot create the promotion lock directory {path.parent} ({exc}); promote needs write access "
            "beside the tracking store"
        ) from None
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        log.info("%s of %r to finish (lock %s)", WAITING, model_name, path)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise ImblabError(
                f"another `imblab promote` of {model_name!r} has held the lock {path} for over "
                f"{timeout:g}s; wait for it to finish and retry (the lock is released when that "
                "process exits)"
            ) from None
    try:
        yield path
    finally:
        lock.release()
