"""Every error leaves as `{"error": {"type", "message"}}` with a fitting status."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.errors import TandemError
from tandem.stores.docs import storage_failure

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
    """The response for any exception: a domain error as it says; a store that fails under
    a route that did not wrap it, 503 (logged); anything else is a bug: 500, logged with its
    traceback, and opaque to the client (its text may hold paths, keys or user data)."""
    if isinstance(error, TandemError):
        return error_response(error.status, error.type, str(error), error.retry_after)
    down = storage_failure(error)
    if down is not None:
        log.warning("%s: %s", down, f"{error!r}"[:500])
        return error_response(down.status, down.type, str(down), down.retry_after)
    log.error("unexpected error (%s)", type(error).__name__, exc_info=error)
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
    # innermost of the middleware (appended, where `add_middleware` puts it outermost): its
    # answers still pass CORS and the request metrics
    app.user_middleware.append(Middleware(UnexpectedErrors))
    # the last resort, for an exception in the middleware itself: house-shaped still
    app.add_exception_handler(Exception, on_tandem)


class UnexpectedErrors:
    """Any exception no handler took becomes `error_from_exception`'s answer, logged once.

    (Starlette's own last resort answers and then raises it again for the server to log a
    second time, as an "Exception in ASGI application" traceback, even for a 503.) One raised
    after the answer started (a stream) goes on up: there is no status line left to set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception as error:
            if started:
                raise
            await error_from_exception(error)(scope, receive, send)
