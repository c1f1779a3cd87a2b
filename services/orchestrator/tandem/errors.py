"""Domain errors. Each carries the HTTP status and error type the API edge maps it to."""

from __future__ import annotations


class TandemError(Exception):
    """Base class: `status` and `type` are what the API returns; `str(e)` is the message."""

    status = 500
    type = "internal_error"
    retry_after: int | None = None


class BadInput(TandemError):
    status = 400
    type = "bad_request"


class Unauthorized(TandemError):
    status = 401
    type = "unauthorized"


class Forbidden(TandemError):
    status = 403
    type = "forbidden"


class NotFound(TandemError):
    status = 404
    type = "not_found"


class Conflict(TandemError):
    status = 409
    type = "conflict"


class TooLarge(TandemError):
    status = 413
    type = "too_large"


class RateLimited(TandemError):
    status = 429
    type = "rate_limited"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DependencyDown(TandemError):
    """vLLM or Qdrant cannot be reached or answered badly."""

    status = 503
    type = "dependency_unavailable"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TimedOut(TandemError):
    """A request ran past its deadline (`TANDEM_VLLM__REQUEST_TIMEOUT_S`)."""

    status = 504
    type = "timeout"


class StorageFailed(TandemError):
    """The data dir refused a write (full, read-only, over a quota) during a build."""

    status = 507
    type = "storage_failed"


class EmbedderFailed(TandemError):
    """The index job's model process died or refused to start; nothing was published."""

    status = 500
    type = "index_embedder_failed"


class IndexEmpty(DependencyDown):
    type = "index_unavailable"


class AdapterInvalid(BadInput):
    type = "adapter_invalid"


class Unreachable(DependencyDown):
    """Nothing answers at a Tandem URL (the clients of its API raise this)."""


class ApiError(TandemError):
    """An error answer of Tandem's API that no class above names (a 422, a 500), as the
    API client sees it: it keeps the answer's status and type."""

    def __init__(self, message: str, status: int, type_: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
