"""The one client of Tandem's API: error answers become the domain errors of errors.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tandem.api_client import TandemClient, error_from_response
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
    Unauthorized,
    Unreachable,
)
from tandem.evaluation.make_eval import _index


def _answer(status: int, type_: str, message: str = "m", **headers: str) -> httpx.Response:
    body = {"error": {"type": type_, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "type_", "expected"),
    [
        (400, "bad_request", BadInput),
        (400, "adapter_invalid", AdapterInvalid),
        (401, "unauthorized", Unauthorized),
        (403, "forbidden", Forbidden),
        (404, "not_found", NotFound),
        (409, "conflict", Conflict),
        (503, "dependency_unavailable", DependencyDown),
        (503, "index_unavailable", IndexEmpty),
    ],
)
def test_each_error_answer_becomes_its_domain_error(
    status: int, type_: str, expected: type[Exception]
) -> None:
    error = error_from_response(_answer(status, type_, "no such slot"))
    assert type(error) is expected and error.status == status
    assert str(error) == f"HTTP {status} {type_}: no such slot"


def test_unnamed_statuses_keep_status_type_and_retry_after() -> None:
    invalid = error_from_response(_answer(422, "invalid_request", "messages: field required"))
    assert isinstance(invalid, ApiError) and (invalid.status, invalid.type) == (
        422,
        "invalid_request",
    )
    limited = error_from_response(_answer(429, "rate_limited", "slow down", **{"Retry-After": "7"}))
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    bare = error_from_response(httpx.Response(502, text="<html>bad gateway</html>"))
    assert isinstance(bare, ApiError) and bare.status == 502
    assert str(bare) == "HTTP 502: <html>bad gateway</html>"


def test_call_returns_the_body_and_sends_the_key_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"serving": {"release": "v2"}})

    transport = httpx.MockTransport(handler)
    with TandemClient("http://t.test/", "k1", headers={"X-A": "me"}, transport=transport) as api:
        assert api.index_overview() == {"serving": {"release": "v2"}}
    assert seen[0].url == "http://t.test/v1/admin/index"
    assert seen[0].headers["authorization"] == "Bearer k1" and seen[0].headers["x-a"] == "me"


def test_a_dead_server_is_unreachable_and_not_ready() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with TandemClient("http://down.test:9", transport=httpx.MockTransport(handler)) as api:
        assert not api.ready()
        with pytest.raises(Unreachable, match="cannot reach Tandem at http://down.test:9"):
            api.call("GET", "/v1/admin/index")


def test_wait_for_job_reports_progress_until_done() -> None:
    states = iter(["queued", "running", "succeeded"])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/admin/jobs/j1"
        status = next(states)
        progress = {"stage": "embed", "done": 1, "total": 2} if status == "running" else None
        return httpx.Response(200, json={"status": status, "progress": progress})

    seen: list[dict[str, object]] = []
    sleeps: list[float] = []
    with TandemClient("http://t.test", transport=httpx.MockTransport(handler)) as api:
        job = api.wait_for_job("j1", seen.append, poll_s=0.5, sleep=sleeps.append)
    assert job["status"] == "succeeded" and sleeps == [0.5, 0.5]
    assert seen == [{"stage": "embed", "done": 1, "total": 2}]


def test_make_eval_reports_a_refused_index_request_instead_of_a_key_error(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"serving": {"release": "v1"}})
        return _answer(400, "bad_request", f"{tmp_path} is outside TANDEM_INDEX_ROOTS")

    with (
        TandemClient("http://t.test", transport=httpx.MockTransport(handler)) as api,
        pytest.raises(SystemExit, match="indexing v2: HTTP 400 bad_request: .* outside"),
    ):
        _index(api, tmp_path, "v2")


def test_make_eval_runs_only_the_runs_named_in_their_order() -> None:
    from tandem.evaluation.make_eval import chosen_runs, run_names

    picked = chosen_runs("paperless-ngx-v3.0.5, sample-product-v4.1")
    assert [f"{name}-{release}" for name, release, _ in picked] == [
        "sample-product-v4.1",
        "paperless-ngx-v3.0.5",
    ]
    assert len(chosen_runs(",".join(run_names()))) == 5
    with pytest.raises(SystemExit, match="unknown paperless-ngx-v9; use sample-product-v4.1"):
        chosen_runs("paperless-ngx-v9")
