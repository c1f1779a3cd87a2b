"""The one client of Tandem's own HTTP API: the CLI, the eval harness and `make eval` use it.

An error answer (`{"error": {"type", "message"}}`) becomes the domain error of `errors.py`
that carries the same type (else the one of its status), so callers handle a refused key,
a conflict or a dependency that is down the same way wherever they call from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tandem.errors import (
    AdapterInvalid,
    ApiError,
    BadInput,
    Conflict,
    DependencyDown,
    Forbidden,
    IndexEmpty,
    NotFound,
    RateLimited,
    TandemError,
    TooLarge,
    Unauthorized,
    Unreachable,
)

JOB_DONE = frozenset({"succeeded", "failed"})
_BY_STATUS: dict[int, type[TandemError]] = {
    400: BadInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    429: RateLimited,
    503: DependencyDown,
}
_NAMED: list[type[TandemError]] = [*_BY_STATUS.values(), AdapterInvalid, IndexEmpty]
_BY_TYPE = {cls.type: cls for cls in _NAMED}


def error_from_response(response: httpx.Response) -> TandemError:
    """The domain error an error answer stands for; its message names status and type."""
    try:
        body = response.json()["error"]
        type_, detail = str(body["type"]), str(body["message"])
        message = f"HTTP {response.status_code} {type_}: {detail}"
    except (ValueError, KeyError, TypeError):
        type_, message = "", f"HTTP {response.status_code}: {response.text[:200]}"
    cls = _BY_TYPE.get(type_) or _BY_STATUS.get(response.status_code)
    if cls is None or cls.status != response.status_code:
        return ApiError(message, response.status_code, type_ or "error")
    error = cls(message)
    retry_after = response.headers.get("retry-after", "")
    if retry_after.isdigit():
        error.retry_after = int(retry_after)
    return error


class TandemClient:
    """A running Tandem at `url`; `transport` is the seam tests fill with a MockTransport."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        sent = {**(headers or {}), **({"Authorization": f"Bearer {key}"} if key else {})}
        self._http = httpx.Client(
            base_url=self.url, headers=sent, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TandemClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer (for callers that retry); raises httpx.TransportError."""
        return self._http.request(method, path, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a 2xx answer; an error answer raises its domain error."""
        try:
            response = self.send(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(f"cannot reach Tandem at {self.url}: {error!r}") from error
        if not response.is_success:
            raise error_from_response(response)
        return response.json()

    def ready(self) -> bool:
        """Whether `/readyz` says every dependency is up (False when nothing answers)."""
        try:
            return self.send("GET", "/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def index_overview(self) -> dict[str, Any]:
        """The serving release and collection, and the releases kept for rollback."""
        body: dict[str, Any] = self.call("GET", "/v1/admin/index")
        return body

    def start_index(self, path: str, release: str) -> str:
        """Start indexing a docs folder on the server as `release`; returns the job id."""
        body = self.call("POST", "/v1/admin/index", json={"path": path, "release": release})
        return str(body["job"])

    def wait_for_job(
        self,
        job_id: str,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll a job until it succeeded or failed; returns its last state."""
        while True:
            job: dict[str, Any] = self.call("GET", f"/v1/admin/jobs/{job_id}")
            if on_progress and job.get("progress"):
                on_progress(job["progress"])
            if job["status"] in JOB_DONE:
                return job
            sleep(poll_s)
