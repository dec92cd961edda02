"""The ``/invocations`` protocol of MLflow's scoring server: a request body in, a table and params out.

Bodies (``Content-Type``):

* ``application/json``: ``{"dataframe_split": {"columns": [...], "data": [[...]]}, "params": {...}}``,
  ``{"dataframe_records": [{"col": value, ...}, ...]}``, or ``inputs`` / ``instances`` holding either
  ``{"col": [values]}`` or a list of row objects; ``params`` is optional in every form;
* ``text/csv`` and ``application/vnd.apache.parquet``: a table with a header (no ``params``).

Anything else is a ``RequestError`` with an HTTP status and a short message: it never echoes more
than ``PREVIEW`` characters of the body.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import orjson
import pandas as pd

from imblab.errors import ImblabError
from imblab.serving import numeric_rows

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
SPLIT, RECORDS, INPUTS, INSTANCES = "dataframe_split", "dataframe_records", "inputs", "instances"
FORMATS = (SPLIT, RECORDS, INPUTS, INSTANCES)
PARAMS = "params"
PREVIEW = 80  # characters of a bad body quoted back, at most

# MLflow's error codes (``error_code`` of its JSON errors), so its clients read ours the same way.
BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
INTERNAL_ERROR = "INTERNAL_ERROR"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"


class RequestError(ImblabError):
    """A request the server refuses: HTTP ``status``, MLflow ``code`` and a message saying what to send."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def bad(message: str) -> RequestError:
    """A 400 for a body that cannot be read as a table."""
    return RequestError(400, BAD_REQUEST, message)


def invalid(message: str) -> RequestError:
    """A 400 for a readable request the model refuses (rows, columns, params)."""
    return RequestError(400, INVALID_PARAMETER_VALUE, message)


def preview(body: bytes) -> str:
    """The start of a body, quoted, for an error message: never more than ``PREVIEW`` characters."""
    text = body[: PREVIEW * 4].decode("utf-8", errors="replace")
    if len(text) > PREVIEW or len(body) > PREVIEW * 4:
        return f"{text[:PREVIEW]!r}... ({len(body):,} bytes)"
    return repr(text)


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (library messages can quote whole values)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header; 415 unless it is one we read, in UTF-8."""
    expected = f"send Content-Type {JSON}, {CSV} or {PARQUET}"
    if not content_type:
        raise RequestError(415, BAD_REQUEST, f"the request has no Content-Type; {expected}")
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    mime = mime.lower()
    if mime not in CONTENT_TYPES:
        raise RequestError(
            415, BAD_REQUEST, f"Content-Type {shorten(content_type, 80)!r} is not read; {expected}"
        )
    for parameter in filter(None, parameters):  # "application/json;" has an empty one
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise RequestError(
                415, BAD_REQUEST, f"only charset=utf-8 is read, got {shorten(parameter, 80)!r}"
            )
    return mime


def parse(
    body: bytes, content_type: str | None, numeric: list[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The table and the params of a request.

    ``numeric``: the model's feature columns when all of them are numeric (a binary frozen model). A
    ``dataframe_split`` with exactly these columns and only numbers or nulls is then read straight
    into one float array, without a Python object per cell in pandas; any other body takes pandas'
    general path, which is what MLflow's server does, so the model sees the same table either way.
    """
    mime = media_type(content_type)
    if not body:
        raise bad(f"the request body is empty; send a table as {mime}")
    if mime == CSV:
        try:
            return pd.read_csv(io.BytesIO(body)), None
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise bad(
                f"the body is not a CSV table with a header ({shorten(exc)}); it starts {preview(body)}"
            ) from None
    if mime == PARQUET:
        try:
            return pd.read_parquet(io.BytesIO(body)), None
        except Exception as exc:  # pyarrow raises several types for a corrupt file; all mean the same here
            raise bad(f"the body is not a Parquet file ({shorten(exc)}); it starts {preview(body)}") from None
    return parse_json(body, numeric)


def parse_json(body: bytes, numeric: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """A JSON request: exactly one of ``FORMATS`` and optional ``params``."""
    if numeric and len(body) >= numeric_rows.MIN_BYTES:
        fast = numeric_split(body, numeric)
        if fast is not None:
            return fast
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        # The standard parser also reads the NaN / Infinity that Python's json.dumps writes.
        try:
            doc = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise bad(
                f"the body is not valid JSON ({shorten(exc, 120)}); it starts {preview(body)}"
            ) from None
    if not isinstance(doc, dict):
        raise bad(
            f'the JSON body must be an object such as {{"{SPLIT}": {{"columns": [...], "data": [[...]]}}}}, '
            f"got a {type(doc).__name__}"
        )
    keys = [k for k in FORMATS if k in doc]
    unknown = [shorten(k, 40) for k in doc if k not in FORMATS and k != PARAMS]
    if len(keys) != 1 or unknown:
        got = f"; unknown key(s) {unknown[:5]}" if unknown else f"; got {keys or 'none of them'}"
        raise bad(f"the JSON body must hold exactly one of {list(FORMATS)} and optionally {PARAMS!r}{got}")
    params = doc.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise invalid(f'"{PARAMS}" must be a JSON object such as {{"threshold": 0.3}}')
    key = keys[0]
    frame = _split(doc[key], numeric) if key == SPLIT else _table(key, doc[key])
    return frame, params


def numeric_split(body: bytes, numeric: list[str]) -> tuple[pd.DataFrame, dict[str, Any] | None] | None:
    """``parse_json``'s answer for a compact ``dataframe_split`` with exactly the ``numeric`` columns and
    only numbers or nulls, read without a Python object per cell; ``None`` for any other body.

    It answers only where ``parse_json`` would take its own numeric path (one float array) to the same
    frame, so every other body, valid or not, gets the general path's answer and error message.
    """
    cut = numeric_rows.cut_rows(body)
    if cut is None:
        return None
    rest, start, end = cut
    try:
        doc = orjson.loads(rest)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or SPLIT not in doc or set(doc) - {SPLIT, PARAMS}:
        return None
    value, params = doc[SPLIT], doc.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        return None
    if not isinstance(value, dict) or set(value) - {"columns", "data", "index"}:
        return None
    if value.get("columns") != numeric or value.get("index") is not None:
        return None
    if not numeric_rows.placeholder_only_at_rows(doc, value.get("data")):
        return None
    array = numeric_rows.read_rows(body, start, end, len(numeric))
    if array is None:
        return None
    return pd.DataFrame(array, columns=pd.Index(value["columns"], dtype=object), copy=False), params


def _split(value: Any, numeric: list[str] | None) -> pd.DataFrame:
    if not isinstance(value, dict) or "data" not in value or set(value) - {"columns", "data", "index"}:
        raise bad(f'"{SPLIT}" must be an object with "columns" and "data" (and optionally "index")')
    data, columns, index = value["data"], value.get("columns"), value.get("index")
    if not isinstance(data, list) or not isinstance(columns, list | None):
        raise bad(f'"{SPLIT}": "data" must be a list of rows and "columns" a list of names')
    if numeric is not None and columns == numeric and index is None:
        try:
            array = np.array(data, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            array = None  # text, nested or ragged rows: pandas' path below, and the model's own message
        if array is not None and array.ndim == 2 and array.shape[1] == len(columns):
            return pd.DataFrame(array, columns=pd.Index(columns, dtype=object), copy=False)
    try:
        return pd.DataFrame(data, columns=columns, index=index)
    except (ValueError, TypeError) as exc:
        raise bad(f'"{SPLIT}" is not a table: {shorten(exc)}') from None


def _table(key: str, value: Any) -> pd.DataFrame:
    """``dataframe_records`` (rows), ``inputs`` / ``instances`` (rows or ``{column: values}``)."""
    rows = isinstance(value, list) and all(isinstance(r, dict) for r in value)
    columns = key != RECORDS and isinstance(value, dict) and all(isinstance(v, list) for v in value.values())
    if not (rows or columns):
        shapes = (
            "a list of row objects" if key == RECORDS else 'a list of row objects or {"column": [values]}'
        )
        raise bad(f'"{key}" must be {shapes}; this model takes a table with named columns')
    try:
        return pd.DataFrame(value)
    except (ValueError, TypeError) as exc:
        raise bad(f'"{key}" is not a table: {shorten(exc)}') from None
