"""Credentials never stored or printed: the one masking function for everything imblab writes or prints.

``mask(text)`` replaces, in any string:

- the password of a URL's userinfo, any scheme (``postgresql+psycopg2://user:PW@host/db`` ->
  ``postgresql+psycopg2://user:***@host/db``), also in the escaped form Hydra prints overrides in
  (``http\\://user\\:PW@host``);
- the value after a secret-looking key (``password=PW``, ``db.password: PW``, ``"api_key": "PW"``);
- the value of every secret-looking environment variable (``MLFLOW_TRACKING_PASSWORD``, ``PGPASSWORD``,
  ``AWS_SECRET_ACCESS_KEY``, ...) wherever it appears verbatim: a password interpolated through
  ``${oc.env:PGPASSWORD}`` ends up in the resolved config.

``mask_config`` does the same for nested config data (a secret-looking key's whole value becomes
``***``). Params, tags, run names, ``config.yaml`` artifacts, trial records and error messages go through
them where they are written; :func:`install` masks, process-wide, every log record and everything written
to ``sys.stdout``/``sys.stderr`` (MLflow's own "View run ... at http://user:PW@..." line, Hydra's job
list, tracebacks), and :func:`mask_file` rewrites the files Hydra writes itself (``imblab.app.secrets``).

The recommended way to give credentials is not to put them in a URL at all: ``MLFLOW_TRACKING_USERNAME``
/ ``MLFLOW_TRACKING_PASSWORD`` (read by MLflow), ``PGPASSWORD`` or ``~/.pgpass`` (read by libpq), or
``${oc.env:VAR}`` in a config (Hydra's own output files keep the reference, not the value).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

MASK = "***"
# Shorter values of secret variables are not masked: replacing every "1" or "on" would garble the output.
MIN_SECRET_LENGTH = 4

# A name is secret when one of its words is one of these (``DB_PASS``, ``MLFLOW_TRACKING_TOKEN``) ...
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pass", "passphrase", "secret", "token", "apikey", "credential", "credentials"}
)
# ... or when its words run together contain one of these (``PGPASSWORD``, ``api_key``, ``ACCESS_KEY``).
_SECRET_PARTS = ("password", "passwd", "apikey", "accesskey", "privatekey", "secretkey", "authtoken")

# scheme://[user]:PASSWORD@host — the password runs to the last "@" before a "/", space or quote, so an
# unencoded "@" inside it is masked too. "\\?" admits Hydra's escaped form of ":" (``http\://u\:pw@h``).
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*\\?://"  # scheme://
    r"[^\s:/@'\"<>]*?\\?:)"  # user:
    r"(?P<password>[^\s/'\"<>]+?)"  # password, up to ...
    r"(?=@[^@\s/'\"<>]*(?:[\s/'\"<>?#]|$))"  # ... the "@" before the host
)
# key=value, key: value, "key": "value" (URL query strings and libpq DSNs included) for keys that contain a
# secret word; ``is_secret_name`` then decides on whole words (``max_tokens=5`` stays).
_KEY_VALUE = re.compile(
    r"(?<![\w.\-])(?P<key>[\w.\-]*(?:pass|secret|token|api_?key|access_?key|private_?key|credential)[\w\-]*)"
    r"(?P<sep>[\"']?[ \t]*[=:][ \t]*[\"']?)"
    r"(?P<value>[^\s\"',;&}\]]+)",
    re.IGNORECASE,
)


_KEY_STEMS = ("pass", "secret", "token", "key", "credential")
# A mask standing alone as a YAML value (``password: ***``, ``- ***``).
_BARE_MASK_IN_YAML = re.compile(r"(?m)((?::|^[ \t]*-)[ \t]+)" + re.escape(MASK) + r"(?=[ \t]*$)")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a config key or environment variable name looks like it holds a secret.

    Only the last dotted component counts (``db.password`` yes, ``password_rules.min_length`` no).
    """
    last = str(name).rsplit(".", 1)[-1].lower()
    words = [w for w in re.split(r"[^a-z0-9]+", last) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    joined = "".join(words)
    return any(part in joined for part in _SECRET_PARTS)


def secret_env_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of the secret-looking environment variables, longest first (the ones ``mask`` removes)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def _is_reference(value: str) -> bool:
    """An interpolation such as ``${oc.env:PGPASSWORD}`` (``$\\{oc.env\\:PGPASSWORD\\}`` as Hydra escapes an
    override): it names where the secret is, so it stays."""
    return value.startswith(("${", "$\\{"))


def _mask_url(match: re.Match[str]) -> str:
    return match[0] if _is_reference(match["password"]) else f"{match['head']}{MASK}"


def _mask_pair(match: re.Match[str]) -> str:
    value = match["value"]
    if not is_secret_name(match["key"]) or value == MASK or _is_reference(value):
        return match[0]
    return f"{match['key']}{match['sep']}{MASK}"


def mask(text: str) -> str:
    """``text`` with URL passwords, secret keys' values and secret environment values replaced by ``***``."""
    if not text:
        return text
    if "//" in text:  # cheap tests first: most log lines have neither a URL nor a secret-looking key
        text = _URL_PASSWORD.sub(_mask_url, text)
    lowered = text.lower()
    if any(stem in lowered for stem in _KEY_STEMS):
        text = _KEY_VALUE.sub(_mask_pair, text)
    for value in secret_env_values():
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_config(node: Any) -> Any:
    """A copy of nested config data (dicts, lists, scalars) with every secret masked; nothing else changes."""
    if isinstance(node, dict):
        secret = {k for k, v in node.items() if is_secret_name(str(k)) and v not in (None, "")}
        return {k: MASK if k in secret else mask_config(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [mask_config(v) for v in node]
    if isinstance(node, str):
        return mask(node)
    return node


def mask_tags(tags: dict[str, Any]) -> dict[str, str]:
    """MLflow tags (or params) with their values masked."""
    return {k: mask(str(v)) for k, v in tags.items()}


def mask_file(path: str | os.PathLike[str]) -> bool:
    """Rewrite a text file masked, atomically (a concurrent reader sees the old or the new file, never half of
    one); True if it changed. A missing file is left alone."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return False
    masked = mask(text)
    if masked == text:
        return False
    if path.suffix in (".yaml", ".yml"):  # a bare *** would start a YAML alias: quote it
        masked = _BARE_MASK_IN_YAML.sub(rf"\1'{MASK}'", masked)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(masked)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True


def mask_files(paths: Iterable[str | os.PathLike[str]]) -> int:
    """:func:`mask_file` on each path; how many changed."""
    return sum(mask_file(p) for p in paths)


# --------------------------------------------------------------------------------------------------
# Process-wide: log records and the standard streams
# --------------------------------------------------------------------------------------------------


class MaskingStream:
    """A text stream that masks what is written to it and passes everything else to the stream it wraps.

    Each ``write`` is masked on its own: ``print`` and ``traceback`` write a URL in one piece.
    """

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(mask(text))
        return len(text)  # what the caller asked to write, as TextIO.write reports it

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer, ...
        return getattr(self.wrapped, name)


def _masking_factory(factory: Any) -> Any:
    """A log record factory whose records carry their message (and traceback text) already masked, so every
    handler, including the ones Hydra configures per job and its ``<job>.log`` file, writes them masked."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as it always does
            return record
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return record

    make.imblab_masking = True  # type: ignore[attr-defined]
    return make


def install() -> None:
    """Mask every log record and everything written to ``sys.stdout``/``sys.stderr`` in this process.

    Idempotent. Called by the ``imblab`` command before anything runs, and by the Hydra callback in each
    job (a joblib worker process is a new process).
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "imblab_masking", False):
        logging.setLogRecordFactory(_masking_factory(factory))
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, MaskingStream):
            setattr(sys, name, MaskingStream(stream))
