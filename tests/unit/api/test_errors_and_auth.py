"""The API edge: error mapping, keys and scopes, limits. Real app, test services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.fakes import FakeVllm, fake_services, unit_settings

from tandem.api.app import create_app
from tandem.api.deps import RateLimiter
from tandem.errors import DependencyDown, RateLimited


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = unit_settings(
        tmp_path,
        api_keys=["chat"],
        admin_keys=["admin"],
        rate_limit_per_minute=5,
        max_request_bytes=2_000,
    )
    vllm = FakeVllm(reply=lambda model: f"model={model}")
    with TestClient(create_app(settings, services_factory=fake_services(vllm))) as test_client:
        yield test_client


def chat(client: TestClient, key: str | None, **body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    payload = {
        "messages": [{"role": "user", "content": "hi"}],
        "retrieval": False,
        "adapter": "none",
        **body,
    }
    return client.post("/v1/chat", json=payload, headers=headers)


def test_base_model_answer_passes_through(client: TestClient) -> None:
    response = chat(client, "chat")
    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == "model=HuggingFaceTB/SmolLM2-135M-Instruct"
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 3}


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("bogus", 401), ("admin", 200)])
def test_chat_keys(client: TestClient, key: str | None, status: int) -> None:
    assert chat(client, key).status_code == status


def test_admin_routes_refuse_chat_keys(client: TestClient) -> None:
    response = client.get("/v1/admin/index", headers={"Authorization": "Bearer chat"})
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "forbidden"


def test_empty_index_is_503_with_retry_after(client: TestClient) -> None:
    response = chat(client, "chat", retrieval=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "no documentation is indexed" in response.json()["error"]["message"]


def test_schema_errors_are_422_in_the_house_shape(client: TestClient) -> None:
    response = client.post(
        "/v1/chat", json={"messages": "nope"}, headers={"Authorization": "Bearer chat"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_request"


def test_oversized_bodies_are_413(client: TestClient) -> None:
    response = chat(client, "chat", messages=[{"role": "user", "content": "x" * 5_000}])
    assert response.status_code == 413


def test_unknown_routes_are_404_json(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


def test_index_paths_outside_the_roots_are_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/admin/index",
        json={"path": "/etc", "release": "v1"},
        headers={"Authorization": "Bearer admin"},
    )
    assert response.status_code == 403
    assert "TANDEM_INDEX_ROOTS" in response.json()["error"]["message"]


def test_rate_limit_is_per_key_with_retry_after() -> None:
    limiter = RateLimiter(per_minute=2)
    limiter.check("a")
    limiter.check("a")
    limiter.check("b")
    with pytest.raises(RateLimited) as caught:
        limiter.check("a")
    assert caught.value.status == 429 and caught.value.retry_after and caught.value.retry_after >= 1


def test_dependency_errors_carry_retry_after() -> None:
    error = DependencyDown("vLLM down")
    assert error.status == 503 and error.retry_after == 5
