"""Signing, the backoff schedule and the delivery worker, with the help desk played at the
HTTP transport (`httpx.MockTransport`) and the in-memory store."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tandem.handoffs.delivery import (
    HANDOFF_HEADER,
    SIGNATURE_HEADER,
    HandoffDelivery,
    backoff_delay,
    sign,
    verify,
    webhook_body,
)
from tandem.settings import HandoffSettings
from tandem.stores.handoffs import HandoffRecord, InMemoryHandoffStore

SECRET = "s3cret"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def handoff(handoff_id: str = "handoff-1") -> HandoffRecord:
    return HandoffRecord(
        id=handoff_id,
        created=NOW,
        answer_id="chat-1",
        contact="ana@example.com",
        note="",
        transcript=[{"role": "user", "content": "Can I export to Jira?"}],
        answered={"outcome": "declined", "answer": "No.", "sources": [], "release": "v4.2",
                  "adapter": "support@v3"},
        next_attempt=NOW,
    )  # fmt: skip


def test_signature_is_the_hmac_of_the_raw_body() -> None:
    body = webhook_body(handoff(), 1, NOW)
    # the reference value, computed independently: printf %s BODY | openssl dgst -sha256 -hmac
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET) == f"sha256={expected}"
    assert verify(body, sign(body, SECRET), SECRET, now=NOW + 10)
    assert not verify(body, sign(body, "other"), SECRET, now=NOW)
    assert not verify(body.replace(b"Jira", b"Asana"), sign(body, SECRET), SECRET, now=NOW)
    assert not verify(body, sign(body, SECRET), SECRET, now=NOW + 3600)  # an old one replayed


def test_the_body_carries_handoff_transcript_answer_contact_and_timestamp() -> None:
    payload = json.loads(webhook_body(handoff(), 2, NOW + 0.7))
    assert payload["timestamp"] == int(NOW) and payload["attempt"] == 2
    assert payload["handoff"]["id"] == "handoff-1" and payload["contact"] == "ana@example.com"
    assert payload["transcript"] == [{"role": "user", "content": "Can I export to Jira?"}]
    assert payload["answered"]["outcome"] == "declined"


def test_backoff_doubles_up_to_the_cap() -> None:
    schedule = [backoff_delay(n, 5, 60) for n in range(1, 7)]
    assert schedule == [5, 10, 20, 40, 60, 60]


def worker(
    answers: list[int], store: InMemoryHandoffStore, clock: Clock, max_attempts: int = 3
) -> tuple[HandoffDelivery, list[httpx.Request]]:
    """A worker whose help desk answers with `answers` in turn (the last one from then on)."""
    seen: list[httpx.Request] = []

    def desk(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers[min(len(seen), len(answers)) - 1], text="desk says")

    settings = HandoffSettings(
        webhook_url="https://desk.example/hook", secret=SECRET, max_attempts=max_attempts,
        backoff_s=2, backoff_max_s=60,
    )  # fmt: skip
    delivery = HandoffDelivery(store, settings, transport=httpx.MockTransport(desk), clock=clock)
    return delivery, seen


def run_rounds(delivery: HandoffDelivery, clock: Clock, rounds: int) -> None:
    async def go() -> None:
        for _ in range(rounds):
            await delivery.deliver_due()
            clock.now += 100  # past every backoff of these tests
        await delivery.aclose()

    asyncio.run(go())


def test_a_receiver_failing_twice_then_accepting_gets_it_exactly_once() -> None:
    store, clock = InMemoryHandoffStore(clock=Clock()), Clock()
    store.create(handoff())
    delivery, seen = worker([500, 503, 200], store, clock, max_attempts=5)
    run_rounds(delivery, clock, 6)
    assert len(seen) == 3  # two failures, one 2xx, then nothing more
    kept = store.get("handoff-1")
    assert kept.status == "delivered" and kept.attempts == 3
    assert kept.last_error and kept.last_error.startswith("HTTP 503")
    last = seen[-1]
    assert last.headers[HANDOFF_HEADER] == "handoff-1"
    assert verify(last.content, last.headers[SIGNATURE_HEADER], SECRET, now=clock.now - 100)


def test_a_dead_receiver_fails_after_max_attempts_and_retry_sends_again() -> None:
    store, clock = InMemoryHandoffStore(clock=Clock()), Clock()
    store.create(handoff())
    delivery, seen = worker([502], store, clock, max_attempts=3)
    run_rounds(delivery, clock, 5)
    kept = store.get("handoff-1")
    assert len(seen) == 3 and kept.status == "failed" and kept.attempts == 3
    store.retry("handoff-1", clock.now)
    delivery, seen = worker([200], store, clock)
    run_rounds(delivery, clock, 2)
    assert len(seen) == 1 and store.get("handoff-1").status == "delivered"


def test_waits_follow_the_backoff_schedule() -> None:
    store, clock = InMemoryHandoffStore(clock=Clock()), Clock()
    store.create(handoff())
    delivery, seen = worker([500], store, clock, max_attempts=5)

    async def go() -> list[float]:
        pauses = [await delivery.deliver_due()]
        clock.now += 1.9  # not due yet: 2 s after the first failure
        pauses.append(await delivery.deliver_due())
        clock.now += 0.1
        pauses.append(await delivery.deliver_due())
        await delivery.aclose()
        return pauses

    pauses = asyncio.run(go())
    assert len(seen) == 2
    assert pauses[0] == pytest.approx(2) and pauses[2] == pytest.approx(4)


def test_a_transport_error_is_a_failed_attempt() -> None:
    store, clock = InMemoryHandoffStore(clock=Clock()), Clock()
    store.create(handoff())

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    settings = HandoffSettings(webhook_url="https://desk.example/hook", secret=SECRET)
    delivery = HandoffDelivery(store, settings, transport=httpx.MockTransport(refuse), clock=clock)
    run_rounds(delivery, clock, 1)
    kept = store.get("handoff-1")
    assert kept.status == "pending" and kept.last_error == "ConnectError: connection refused"


def test_a_webhook_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="SECRET"):
        HandoffSettings(webhook_url="https://desk.example/hook")
