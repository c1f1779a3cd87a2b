"""Every error leaves as `{"error": {"type", "message"}}` with a fitting status."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tandem.errors import TandemError

log = logging.getLogger("tandem.api")

_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
    429: "rate_limited",
    503: "dependency_unavailable",
    504: "timeout",
}


def error_response(
    status: int, type_: str, message: str, retry_after: int | None = None
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse(
        {"error": {"type": type_, "message": message}}, status_code=status, headers=headers
    )


def error_from_exception(error: Exception) -> JSONResponse:
    """The response for any exception; unexpected ones are logged and stay opaque."""
    if isinstance(error, TandemError):
        return error_response(error.status, error.type, str(error), error.retry_after)
    log.exception("unexpected error", exc_info=error)
    return error_response(500, "internal_error", "unexpected server error; see the server log")


def error_payload(error: Exception) -> dict[str, Any]:
    """The `{"error": {...}}` body for in-band errors (after a stream has started)."""
    body: dict[str, Any] = json.loads(bytes(error_from_exception(error).body))
    return body


def install_error_handlers(app: FastAPI) -> None:
    async def on_tandem(request: Request, error: Exception) -> JSONResponse:
        return error_from_exception(error)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        parts = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in error.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(parts)[:1000])

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        return error_response(
            error.status_code, _HTTP_TYPES.get(error.status_code, "error"), str(error.detail)
        )

    app.add_exception_handler(TandemError, on_tandem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_tandem)
