"""The chat client against a fake Tandem at the transport: bodies, retries, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tandem.errors import BadInput
from tandem.evaluation.harness import CONFIGURATIONS, Harness, Unreachable, parse_configs
from tandem.evaluation.qa import load_qa

QUESTION = "How do I set the OCR language?"


def _harness(fake: Any, sleeps: list[float] | None = None, key: str = "k1") -> Harness:
    record = sleeps if sleeps is not None else []
    return Harness("http://tandem.test/", key, transport=fake.transport, sleep=record.append)


def test_each_configuration_sends_its_adapter_and_retrieval(fake: Any, qa_file: Path) -> None:
    items = load_qa(qa_file)[:1]
    with _harness(fake) as harness:
        outcomes = harness.run(items, parse_configs("base,rag,adapter,hybrid"))
    assert [o.error for o in outcomes] == [None] * 4
    sent = [(b["adapter"], b["retrieval"], b["stream"]) for b in fake.chat_bodies]
    assert sent == [
        ("none", False, False),
        ("none", True, False),
        (None, False, False),
        (None, True, False),
    ]
    assert fake.chat_bodies[0]["messages"] == [{"role": "user", "content": QUESTION}]
    assert fake.headers[0]["authorization"] == "Bearer k1"


def test_no_auth_header_for_an_open_server(fake: Any, qa_file: Path) -> None:
    with _harness(fake, key="") as harness:
        harness.ask(load_qa(qa_file)[0], CONFIGURATIONS["hybrid"])
    assert "authorization" not in fake.headers[0]


def test_a_503_then_a_200_is_retried_honouring_retry_after(fake: Any, qa_file: Path) -> None:
    fake.script[QUESTION] = [
        httpx.Response(
            503, headers={"Retry-After": "2"}, json={"error": {"type": "x", "message": "busy"}}
        )
    ]
    sleeps: list[float] = []
    with _harness(fake, sleeps) as harness:
        outcome = harness.ask(load_qa(qa_file)[0], CONFIGURATIONS["hybrid"])
    assert outcome.error is None and outcome.attempts == 2
    assert outcome.response is not None and "PAPERLESS_OCR_LANGUAGE" in outcome.response["answer"]
    assert sleeps == [2.0]


def test_connect_errors_and_429_are_transient(fake: Any, qa_file: Path) -> None:
    fake.script[QUESTION] = [httpx.ConnectError("refused"), httpx.Response(429)]
    sleeps: list[float] = []
    with _harness(fake, sleeps) as harness:
        outcome = harness.ask(load_qa(qa_file)[0], CONFIGURATIONS["rag"])
    assert outcome.error is None and outcome.attempts == 3
    assert sleeps == [1.0, 2.0]  # exponential backoff without Retry-After


def test_a_question_still_failing_after_three_tries_is_recorded(fake: Any, qa_file: Path) -> None:
    fake.script[QUESTION] = [httpx.Response(502)] * 3 + [httpx.Response(200, json={})]
    items = load_qa(qa_file)
    with _harness(fake) as harness:
        outcomes = harness.run(items, [CONFIGURATIONS["hybrid"]], concurrency=2)
    assert len(outcomes) == len(items)  # counted, not dropped
    failed = [o for o in outcomes if o.error]
    assert [o.item.question for o in failed] == [QUESTION]
    assert failed[0].attempts == 3 and "HTTP 502" in (failed[0].error or "")


def test_transport_errors_on_every_try_become_a_failure(fake: Any, qa_file: Path) -> None:
    fake.script[QUESTION] = [httpx.ReadTimeout("slow")] * 3
    with _harness(fake) as harness:
        outcome = harness.ask(load_qa(qa_file)[0], CONFIGURATIONS["base"])
    assert outcome.response is None and "ReadTimeout" in (outcome.error or "")


def test_non_transient_errors_are_not_retried(fake: Any, qa_file: Path) -> None:
    error = {"error": {"type": "adapter_invalid", "message": "no slot 'support'"}}
    fake.script[QUESTION] = [httpx.Response(400, json=error)]
    with _harness(fake) as harness:
        outcome = harness.ask(load_qa(qa_file)[0], CONFIGURATIONS["adapter"])
    assert outcome.attempts == 1
    assert outcome.error == "HTTP 400 adapter_invalid: no slot 'support'"


def test_malformed_success_is_a_failure(fake: Any, qa_file: Path) -> None:
    fake.script[QUESTION] = [httpx.Response(200, json={"sources": []})]
    with _harness(fake) as harness:
        outcome = harness.ask(load_qa(qa_file)[0], CONFIGURATIONS["hybrid"])
    assert outcome.response is None and "malformed" in (outcome.error or "")


def test_a_refused_key_aborts_the_run(fake: Any, qa_file: Path) -> None:
    fake.script[QUESTION] = [
        httpx.Response(401, json={"error": {"type": "unauthorized", "message": "unknown key"}})
    ]
    with _harness(fake) as harness, pytest.raises(BadInput, match="tandem.test/v1/chat refused"):
        harness.run(load_qa(qa_file), [CONFIGURATIONS["hybrid"]])


def test_unreachable_server_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    harness = Harness(
        "http://down.test:9", transport=httpx.MockTransport(refuse), sleep=lambda _: None
    )
    with pytest.raises(Unreachable, match=r"http://down.test:9/healthz"):
        harness.check_reachable()


def test_serving_release_comes_from_retrieve(fake: Any) -> None:
    with _harness(fake) as harness:
        assert harness.serving_release() == "v3.0.5"


def test_unknown_configuration_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown configurations \\['rgb'\\]"):
        parse_configs("base,rgb")
    assert [c.name for c in parse_configs(" hybrid , rag,hybrid")] == ["hybrid", "rag"]
