"""``tuning.storage``: where a study lives (memory, SQLite or another SQL database, a journal file)."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from imblab.errors import ImblabError
from imblab.secrets import mask

JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")


def storage_label(url: str | None) -> str:
    """The storage URL as logs, tags and errors show it: password masked, ``in-memory`` for none."""
    return mask(url) if url else "in-memory"


def journal_path(url: str) -> Path | None:
    """The file of a journal storage URL (``journal:x.log``, ``journal:///abs/x.log``, ``x.log``)."""
    if url.startswith("journal:"):
        rest = url[len("journal:") :]
        return Path(rest[2:] if rest.startswith("//") else rest)
    if "://" not in url and url.endswith(JOURNAL_SUFFIXES):
        return Path(url)
    return None


StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


def open_storage(
    url: str | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    on_stale: StaleCallback | None = None,
) -> optuna.storages.BaseStorage | None:
    """Optuna storage for ``tuning.storage`` (None = in-memory); ImblabError if it cannot be opened.

    SQL storages get Optuna's heartbeat: ``heartbeat_interval`` / ``grace_period`` seconds, and
    ``on_stale`` called with each trial Optuna fails for a missing heartbeat.
    """
    if not url:
        return None
    shown = storage_label(url)
    hint = (
        "Check the URL (sqlite:///path.db, journal:path.log, postgresql://user@host/db), that its "
        "directory is writable and, for a database server, that it is reachable and that its password is "
        "in PGPASSWORD or ~/.pgpass (or the URL)"
    )
    journal = journal_path(url)
    try:
        if journal is not None:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            if journal.is_dir():
                raise IsADirectoryError(f"{journal} is a directory")
            journal.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(journal)))
        if "://" not in url:
            raise ImblabError(
                f"tuning.storage={url!r} is not a storage URL; use sqlite:///path.db, journal:path.log "
                "(or a path ending in .log), or a database URL such as postgresql://user:password@host/db"
            )
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        engine_kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                db = Path(parsed.database)
                if db.is_dir():
                    raise IsADirectoryError(f"{db} is a directory")
                db.parent.mkdir(parents=True, exist_ok=True)
            # Several worker processes write to one file: wait for the lock instead of failing.
            engine_kwargs["connect_args"] = {"timeout": 60}
        heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        return _rdb_storage(url, engine_kwargs, heartbeat, on_stale if heartbeat_interval else None)
    except ImblabError:
        raise
    except ImportError as exc:  # Optuna re-raises the driver's ModuleNotFoundError as a plain ImportError
        missing = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
        raise ImblabError(
            f"cannot open the Optuna storage {shown}: its database driver is not installed ({missing}); "
            "install it (PostgreSQL: pip install 'psycopg[binary]' for postgresql://, which SQLAlchemy 2.1 "
            "maps to psycopg 3, or psycopg2-binary for postgresql+psycopg2://) or use sqlite:///path.db"
        ) from None
    except Exception as exc:
        reason = mask(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        raise ImblabError(f"cannot open the Optuna storage {shown}: {reason}. {hint}") from None


def _rdb_storage(
    url: str, engine_kwargs: dict[str, Any], heartbeat: dict[str, Any], on_stale: StaleCallback | None
) -> Any:
    """RDBStorage, retried when workers starting together race to create its tables."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    # Optuna 4.9 renamed failed_trial_callback to heartbeat_stale_trial_callback (the old name warns).
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    new_name = "heartbeat_stale_trial_callback"
    callback = new_name if new_name in params else "failed_trial_callback"
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, **heartbeat, **{callback: on_stale}
                )
        except (IntegrityError, OperationalError) as exc:
            # The loser of the race sees a duplicate schema-version row or an existing table.
            racing = isinstance(exc, IntegrityError) or "already exists" in str(exc) or "locked" in str(exc)
            if not racing or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
