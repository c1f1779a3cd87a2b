"""Feedback and widget routes on the real app: answers logged by the chat service, rated by
the customer, reviewed by an agent. vLLM is played at the transport; Qdrant is in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.fakes import FakeVllm, fake_services, memory_stores, unit_settings

from tandem.api.app import ServicesFactory, create_app
from tandem.rag.embedder import HashEmbedder
from tandem.settings import FeedbackSettings, WidgetSettings
from tandem.stores.feedback import InMemoryFeedbackLog

CHAT = {"Authorization": "Bearer chat"}
ADMIN = {"Authorization": "Bearer admin"}
ANSWER = ["Open Settings", " > Plan.", "\nSources: [1]"]  # the model's, as its stream's deltas
# what the customer sees without retrieval: no block [1] was given, so the marker is dropped
SEEN = "Open Settings > Plan."


def services_with(log: InMemoryFeedbackLog) -> ServicesFactory:
    """Real app services around in-memory stores that keep answers in `log`, and a fake vLLM
    that answers whole or as an SSE stream of three deltas."""
    stores = memory_stores(HashEmbedder().dim, answers=log)
    return fake_services(FakeVllm(reply=ANSWER), stores)


@pytest.fixture
def log() -> InMemoryFeedbackLog:
    return InMemoryFeedbackLog()


@pytest.fixture
def client(log: InMemoryFeedbackLog, tmp_path: Path) -> Iterator[TestClient]:
    settings = unit_settings(
        tmp_path,
        api_keys=["chat"],
        admin_keys=["admin"],
        widget=WidgetSettings(origins=["https://shop.example"], key="chat"),
        feedback=FeedbackSettings(max_comment_chars=50),
    )

    with TestClient(create_app(settings, services_factory=services_with(log))) as test_client:
        yield test_client


def ask(client: TestClient, stream: bool = False) -> str:
    body = {
        "messages": [{"role": "user", "content": "How do I change plan?"}],
        "retrieval": False,
        "adapter": "none",
        "stream": stream,
    }
    response = client.post("/v1/chat", json=body, headers=CHAT)
    assert response.status_code == 200
    if stream:
        first = response.text.split("\n\n")[0]
        return str(json.loads(first.split("data: ", 1)[1])["id"])
    return str(response.json()["id"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_every_answer_is_logged_as_the_customer_saw_it(
    client: TestClient, log: InMemoryFeedbackLog, stream: bool
) -> None:
    answer_id = ask(client, stream)
    record = log.answers[answer_id]
    assert record.answer == SEEN
    assert record.conversation == [{"role": "user", "content": "How do I change plan?"}]
    assert record.adapter is None and record.release is None


def test_openai_route_answers_are_logged_too(client: TestClient, log: InMemoryFeedbackLog) -> None:
    body = {"model": "tandem-base", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post("/v1/chat/completions", json=body, headers=CHAT)
    shown = response.json()["choices"][0]["message"]["content"]
    assert log.answers[response.json()["id"]].answer == shown == SEEN


def test_feedback_is_accepted_and_listed_with_a_summary(client: TestClient) -> None:
    answer_id = ask(client)
    response = client.post(
        "/v1/feedback",
        json={"id": answer_id, "rating": "down", "comment": "<b>no</b>"},
        headers=CHAT,
    )
    assert response.status_code == 202
    listed = client.get("/v1/admin/feedback", params={"rating": "down"}, headers=ADMIN).json()
    (item,) = listed["items"]
    assert item["comment"] == "<b>no</b>"  # stored as given; JSON, never rendered as HTML
    assert item["answer"] == SEEN and item["adapter"] is None
    assert listed["summary"]["by_adapter"] == {"base": {"ratings": 1, "down": 1, "down_share": 1.0}}
    assert (
        client.get("/v1/admin/feedback", params={"rating": "up"}, headers=ADMIN).json()["items"]
        == []
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "chat-unknown", "rating": "up"}, 404),
        ({"id": "ANSWER", "rating": "meh"}, 422),
        ({"id": "ANSWER", "rating": "down", "comment": "x" * 51}, 413),
    ],
    ids=["unknown-id", "bad-rating", "comment-too-long"],
)
def test_bad_feedback_gets_the_contract_errors(
    client: TestClient, body: dict[str, str], status: int
) -> None:
    answer_id = ask(client)
    payload = {k: (answer_id if v == "ANSWER" else v) for k, v in body.items()}
    response = client.post("/v1/feedback", json=payload, headers=CHAT)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_a_second_rating_replaces_the_first(client: TestClient) -> None:
    answer_id = ask(client)
    for rating in ("down", "up"):
        client.post("/v1/feedback", json={"id": answer_id, "rating": rating}, headers=CHAT)
    items = client.get("/v1/admin/feedback", headers=ADMIN).json()["items"]
    assert [i["rating"] for i in items] == ["up"]


def test_review_attaches_a_correction_admin_only(client: TestClient) -> None:
    answer_id = ask(client)
    client.post("/v1/feedback", json={"id": answer_id, "rating": "down"}, headers=CHAT)
    path = f"/v1/admin/feedback/{answer_id}/review"
    body = {"corrected": "Open Billing > Plan.\nSources: [1]"}
    assert client.post(path, json=body, headers=CHAT).status_code == 403
    reviewed = client.post(path, json=body, headers=ADMIN)
    assert reviewed.status_code == 200 and reviewed.json()["corrected"] == body["corrected"]
    assert (
        client.post("/v1/admin/feedback/nope/review", json=body, headers=ADMIN).status_code == 404
    )


def test_widget_script_and_demo_page(client: TestClient) -> None:
    script = client.get("/widget/tandem.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "customElements.define" in script.text and "innerHTML" not in script.text
    demo = client.get("/widget/demo")
    assert demo.status_code == 200
    assert (
        'data-key="chat"' in demo.text
        and "script-src 'self'" in demo.headers["content-security-policy"]
    )


def test_cors_allows_only_the_configured_origins(client: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = client.options("/v1/chat", headers={"Origin": "https://shop.example", **preflight})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    refused = client.options("/v1/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers


def test_open_mode_demo_needs_no_key(log: InMemoryFeedbackLog, tmp_path: Path) -> None:
    """A fresh `make run` (no keys, loopback): the demo page has no key and chat needs none."""
    settings = unit_settings(tmp_path)
    assert settings.open_access

    with TestClient(create_app(settings, services_factory=services_with(log))) as client:
        assert 'data-key=""' in client.get("/widget/demo").text
        answer_id = ask(client)
        response = client.post("/v1/feedback", json={"id": answer_id, "rating": "up"})
        assert response.status_code == 202
