"""The ASGI app of ``imblab serve``: MLflow's scoring protocol on a small Starlette app.

Routes: ``POST /invocations`` (see ``imblab.serving.protocol``), ``GET /ping`` and ``GET /health``
(200 once the model is loaded), ``GET /version``. Every error is one JSON object
``{"error_code": ..., "message": ...}`` with MLflow's field names: no stack trace, no file path, and
at most a short preview of a bad body. A body over the size limit is refused with 413 from its
``Content-Length`` before it is read, and a chunked body as soon as the bytes received pass the limit.
Scoring runs in a worker thread, so ``/ping`` answers while a large batch is scored.
"""

from __future__ import annotations

import logging
import os
import site
import sys
import tempfile
from pathlib import Path

import mlflow
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imblab import __version__
from imblab.serving.protocol import (
    ENDPOINT_NOT_FOUND,
    INTERNAL_ERROR,
    JSON,
    REQUEST_LIMIT_EXCEEDED,
    RequestError,
    bad,
    shorten,
)
from imblab.serving.scoring import ServedModel

log = logging.getLogger("uvicorn.error")

# How `imblab serve --workers N` hands the model to uvicorn's worker processes (see from_environment).
ENV_MODEL_DIR = "IMBLAB_SERVE_MODEL_DIR"
ENV_LABEL = "IMBLAB_SERVE_LABEL"
ENV_MAX_BODY = "IMBLAB_SERVE_MAX_BODY_BYTES"
MESSAGE_LIMIT = 1000  # characters of an error message, at most


def _private_prefixes() -> list[str]:
    """Directories that must not appear in an answer (install, user, temp and working directories)."""
    dirs = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        tempfile.gettempdir(),
        str(Path.home()),
        os.getcwd(),
    }
    dirs.update([*site.getsitepackages(), site.getusersitepackages()])
    dirs.add(str(Path(__file__).resolve().parents[2]))  # imblab's source tree
    return sorted((d for d in dirs if d and d != "/"), key=len, reverse=True)


PRIVATE = _private_prefixes()


def scrub(message: str) -> str:
    """``message`` without local directory names and cut to ``MESSAGE_LIMIT`` characters."""
    for prefix in PRIVATE:
        message = message.replace(prefix, "<...>")
    return shorten(message, MESSAGE_LIMIT)


def error(status: int, code: str, message: str) -> Response:
    """The one error shape. A 413 closes the connection: the rest of the body is never read."""
    headers = {"Connection": "close"} if status == 413 else None
    content = orjson.dumps({"error_code": code, "message": scrub(message)})
    return Response(content, status_code=status, media_type=JSON, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 before reading more than ``limit`` bytes of it."""
    too_big = RequestError(
        413,
        REQUEST_LIMIT_EXCEEDED,
        f"the body is over the server's limit of {limit / 2**20:g} MB (imblab serve --max-body-mb); "
        "send fewer rows per request, or Parquet instead of JSON",
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad("the Content-Length header is not a number")
        if int(declared) > limit:
            raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body (no Content-Length), counted as it arrives
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(model: ServedModel, max_body_bytes: int) -> Starlette:
    """The app serving ``model``; bodies over ``max_body_bytes`` get 413."""
    versions = orjson.dumps(
        {"imblab": __version__, "mlflow": mlflow.__version__, "model": scrub(model.label)}
    )

    async def ping(request: Request) -> Response:
        return Response(b'{"status": "ok"}', media_type=JSON)

    async def versions_route(request: Request) -> Response:
        return Response(versions, media_type=JSON)

    async def invocations(request: Request) -> Response:
        try:
            body = await read_body(request, max_body_bytes)
            content = await run_in_threadpool(model.score, body, request.headers.get("content-type"))
        except RequestError as exc:
            return error(exc.status, exc.code, str(exc))
        except Exception:
            log.exception("scoring failed")
            return error(500, INTERNAL_ERROR, "internal error while scoring; the server log has the details")
        return Response(content, media_type=JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = ENDPOINT_NOT_FOUND if status in (404, 405) else INTERNAL_ERROR
        routes = "POST /invocations, GET /ping, /health, /version"
        return error(status, code, f"{request.method} {shorten(request.url.path, 80)}: not served ({routes})")

    return Starlette(
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", versions_route, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def from_environment() -> Starlette:
    """The app in a uvicorn worker process (``--workers N``): each worker loads the model once."""
    model = ServedModel.load(os.environ[ENV_MODEL_DIR], os.environ[ENV_LABEL])
    return build_app(model, int(os.environ[ENV_MAX_BODY]))
