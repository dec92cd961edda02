"""A private PostgreSQL cluster for the team stack: created once under a directory, started on demand.

The cluster is the tracking server's backend store (database ``mlflow``) and the Optuna study storage
(database ``optuna``), both owned by the non-superuser role ``imblab``. Passwords never appear in a
URL: the role's password comes from ``$IMBLAB_PG_PASSWORD`` or is generated once, and is kept in
``<dir>/.pgpass`` (mode 0600), which libpq (psycopg2, psycopg 3) reads through ``$PGPASSFILE``. The
superuser ``imblab_admin`` exists only to create the role and the databases; its password is in
``<dir>/postgres-admin.pgpass``.

PostgreSQL refuses to run as root: when imblab runs as root, the cluster runs as the system user
``postgres``, which must be able to enter the chosen directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imblab.errors import ImblabError
from imblab.stack.processes import Server, launch

ROLE = "imblab"
ADMIN = "imblab_admin"
DATABASES = ("mlflow", "optuna")
PASSWORD_ENV = "IMBLAB_PG_PASSWORD"
BIN_ENV = "IMBLAB_PG_BIN"  # the directory of initdb/postgres when they are not on PATH
DEFAULT_BINS = tuple(Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13))
DRIVER = "postgresql+psycopg2"


@dataclass(frozen=True)
class Cluster:
    """Where a cluster lives and how to reach it (``host`` is what clients connect to)."""

    root: Path  # the stack's directory
    host: str
    port: int

    @property
    def data(self) -> Path:
        return self.root / "postgres"

    @property
    def pgpass(self) -> Path:
        return self.root / ".pgpass"

    @property
    def admin_pgpass(self) -> Path:
        return self.root / "postgres-admin.pgpass"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL without a password (libpq finds it through ``$PGPASSFILE``)."""
        return f"{DRIVER}://{ROLE}@{self.host}:{self.port}/{database}"


def binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres``; ImblabError saying how to get them."""
    candidates = [Path(os.environ[BIN_ENV])] if os.environ.get(BIN_ENV) else []
    on_path = shutil.which("initdb")
    candidates += [Path(on_path).parent] if on_path else []
    candidates += list(DEFAULT_BINS)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise ImblabError(
        "PostgreSQL's initdb/postgres were not found; install the server (Debian: apt-get install "
        f"postgresql) or point ${BIN_ENV} at the directory that holds them"
    )


def _run_as() -> dict[str, Any]:
    """Popen arguments that run PostgreSQL as a non-root user (``postgres`` when we are root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise ImblabError(
            "PostgreSQL cannot run as root and there is no user 'postgres'; run imblab team-server as a "
            "regular user"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _check_reachable(path: Path, uid: int) -> None:
    """As root, user ``postgres`` must be able to enter every directory above the cluster's."""
    for parent in [path, *path.parents]:
        mode = parent.stat()
        if mode.st_uid != uid and not mode.st_mode & stat.S_IXOTH:
            raise ImblabError(
                f"user postgres cannot enter {parent} (mode {stat.filemode(mode.st_mode)}), so the cluster "
                f"cannot live under {path}; choose a directory outside it (e.g. under /srv or /tmp) or "
                f"run as a regular user"
            )


def password(root: Path) -> str:
    """The role's password: ``$IMBLAB_PG_PASSWORD``, else the one kept in ``<root>/.pgpass``, else new."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    pgpass = root / ".pgpass"
    if pgpass.is_file():
        for line in pgpass.read_text().splitlines():
            fields = line.split(":")
            if len(fields) == 5 and fields[3] == ROLE:
                return fields[4]
    return secrets.token_urlsafe(18)


def _write_secret(path: Path, text: str) -> None:
    """A file only its owner can read (libpq ignores a ``.pgpass`` that others can read)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _pgpass_line(user: str, secret: str) -> str:
    escaped = secret.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:{user}:{escaped}\n"


def initialise(cluster: Cluster) -> bool:
    """Create the cluster's files once (``initdb``); False when they already exist."""
    data = cluster.data
    if (data / "PG_VERSION").is_file():
        return False
    run_as = _run_as()
    if run_as:
        _check_reachable(cluster.root, run_as["user"])
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    admin_secret = secrets.token_urlsafe(18)
    pwfile = cluster.root / ".initdb-password"
    _write_secret(pwfile, admin_secret)
    if run_as:
        os.chown(data, run_as["user"], run_as["group"])
        os.chown(pwfile, run_as["user"], run_as["group"])
    argv = [
        str(binaries() / "initdb"), "-D", str(data), "-U", ADMIN, f"--pwfile={pwfile}",
        "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=300,
            **run_as,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise ImblabError(f"initdb failed in {data}: {done.stderr.strip()[-1500:]}")
    _write_secret(cluster.admin_pgpass, _pgpass_line(ADMIN, admin_secret))
    listen = "all" if cluster.host not in ("127.0.0.1", "localhost") else "127.0.0.1/32"
    # Password (SCRAM) authentication over TCP only; no Unix socket is opened (see start).
    hba = f"host all all {listen} scram-sha-256\n"
    if listen == "all":
        hba += "host all all ::/0 scram-sha-256\n"
    (data / "pg_hba.conf").write_text(hba)
    return True


def start(cluster: Cluster, options: list[str]) -> Server:
    """Start the postmaster in its own process group (wait for it with :func:`wait_ready`)."""
    listen = "*" if cluster.host not in ("127.0.0.1", "localhost") else "127.0.0.1"
    argv = [
        str(binaries() / "postgres"), "-D", str(cluster.data), "-p", str(cluster.port),
        "-c", f"listen_addresses={listen}", "-c", "unix_socket_directories=",
        "-c", "max_connections=300",
    ]  # fmt: skip
    for option in options:
        argv += ["-c", option]
    log = cluster.root / "logs" / "postgres.log"
    return launch("postgres", argv, log, cluster.port, **_run_as())  # it writes to our file descriptor


def _connect(cluster: Cluster, database: str = "postgres", user: str = ADMIN) -> Any:
    import psycopg2

    pgpass = cluster.admin_pgpass if user == ADMIN else cluster.pgpass
    secret = pgpass.read_text().rstrip("\n").split(":", 4)[4].replace("\\:", ":").replace("\\\\", "\\")
    host = "127.0.0.1" if cluster.host in ("0.0.0.0", "*", "") else cluster.host
    return psycopg2.connect(
        host=host, port=cluster.port, user=user, password=secret, dbname=database, connect_timeout=5
    )


def wait_ready(cluster: Cluster, server: Server, timeout: float = 120.0) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            log = Path(server.log).read_text(errors="replace")[-2000:]
            raise ImblabError(f"PostgreSQL did not start (port {cluster.port} taken?): {log}")
        try:
            _connect(cluster).close()
            return
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ImblabError(
                    f"PostgreSQL did not accept connections within {timeout:.0f}s: {exc}"
                ) from None
            time.sleep(0.2)


def provision(cluster: Cluster, secret: str) -> None:
    """The role ``imblab`` (password ``secret``) and its databases; idempotent. Writes ``.pgpass``."""
    from psycopg2 import sql

    conn = _connect(cluster)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(ROLE)), (secret,))
            for db in DATABASES:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if not cur.fetchone():
                    create = sql.SQL("CREATE DATABASE {} OWNER {}")
                    cur.execute(create.format(sql.Identifier(db), sql.Identifier(ROLE)))
    finally:
        conn.close()
    _write_secret(cluster.pgpass, _pgpass_line(ROLE, secret))
