"""One chat turn: follow-up queries, sticky keys, the relevance gate and citation checks.

Retrieval is real (the sample product's v4.2 docs in an in-memory Qdrant, the hash embedder);
vLLM is played at the HTTP transport and records every request it gets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from tests.conftest import CORPUS

from tandem.adapters.inflight import InFlight
from tandem.adapters.registry import AdapterRegistry
from tandem.answering.generate import Generation
from tandem.answering.outcome import OFF_TOPIC as OFF_TOPIC_REASON
from tandem.answering.outcome import UNKNOWN_SUBJECT
from tandem.answering.plan import ChatOptions, is_follow_up, retrieval_query, sticky_key
from tandem.answering.subject import Reading
from tandem.answering.turn import ChatService, Delta, TurnResult
from tandem.answering.vocabulary import ReleaseVocabulary
from tandem.indexing.reindex import index_release
from tandem.llm.client import VllmClient
from tandem.llm.pool import VllmPool
from tandem.rag.cross_encoder import FakeCrossEncoder
from tandem.rag.embedder import HashEmbedder
from tandem.rag.prompt import ChatMessage, fallback_sentence
from tandem.rag.retriever import Retriever
from tandem.settings import AnsweringSettings, Settings, VllmSettings
from tandem.stores.deployment import Stores
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import MemoryStateStore

VLLM = "http://vllm:8000"
OFF_TOPIC = "What is the capital of France?"
RATE_LIMIT = "What is the API rate limit per token?"


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def test_a_standalone_question_is_its_own_query() -> None:
    question = "How many recovery codes do I get with two-factor authentication?"
    assert not is_follow_up(question)
    assert retrieval_query([user("How do I reset my password?"), user(question)]) == question


def test_a_follow_up_carries_the_question_before_it_and_leans_toward_itself() -> None:
    first = "How do I turn on push notifications for my account?"
    conversation = [user(first), assistant("Open Settings > Profile."), user("and on Android?")]
    assert retrieval_query(conversation) == f"and on Android?\nand on Android?\n{first}"


def test_follow_up_markers_count_even_in_a_long_turn() -> None:
    assert is_follow_up("What about the rate limit for the bulk endpoints of the API?")
    assert is_follow_up("and on the mobile app?")
    assert not is_follow_up("Which roles can create and send invoices to our clients?")


def test_a_chain_of_follow_ups_reaches_back_to_its_topic_but_no_further() -> None:
    topic = "How do I export a report of billable hours to a spreadsheet?"
    older = "Which plans include single sign-on with our identity provider?"
    conversation = [user(older), user(topic), user("as XLSX?"), user("and for clients?")]
    assert retrieval_query(conversation).split("\n") == [
        "and for clients?",
        "and for clients?",
        "as XLSX?",
        topic,
    ]
    many = [user(topic), user("as XLSX?"), user("or CSV?"), user("and weekly?")]
    assert topic not in retrieval_query(many)  # at most CONTEXT_TURNS earlier turns


def test_sticky_key_prefers_the_conversation_id_then_the_first_user_turn() -> None:
    conversation = [user("first question"), assistant("answer"), user("second")]
    assert sticky_key(conversation, "abc") == "id:abc"
    assert sticky_key(conversation, None) == "first:first question"
    assert sticky_key([assistant("hello")], None) is None


class ScriptedVllm:
    """Answers every chat request with `reply`, split into stream deltas of `piece` chars."""

    def __init__(self, reply: str, piece: int = 4) -> None:
        self.reply = reply
        self.piece = piece
        self.requests: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        usage = {"prompt_tokens": 50, "completion_tokens": 9}
        if not body.get("stream"):
            choice = {"message": {"role": "assistant", "content": self.reply}}
            return httpx.Response(200, json={"choices": [choice], "usage": usage})
        parts = [self.reply[i : i + self.piece] for i in range(0, len(self.reply), self.piece)]
        chunks = [{"choices": [{"delta": {"content": p}}]} for p in parts]
        chunks.append({"choices": [], "usage": usage})
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    embedder = HashEmbedder(64)
    stores = Stores(QdrantDocStore(QdrantClient(":memory:"), embedder.dim), MemoryStateStore())
    index_release(stores, embedder, CORPUS / "v4.2", "v4.2", "docs")
    return Retriever(stores, embedder, "docs", prefetch=24)


def service(
    tmp_path: Path, retriever: Retriever, vllm: ScriptedVllm, speculate: bool = True
) -> ChatService:
    settings = Settings(
        data_dir=tmp_path,
        vllm=VllmSettings(url=VLLM),
        # the fake cross-encoder scores the share of the question's words a block holds
        answering=AnsweringSettings(
            min_evidence=0.75, declined_evidence=0.7, declined_similarity=1.0, speculate=speculate
        ),
    )
    pool = VllmPool([VllmClient(VLLM, 5, transport=httpx.MockTransport(vllm.handle))])
    registry = AdapterRegistry(tmp_path / "adapters", retriever.stores.state)
    return ChatService(
        settings,
        retriever,
        registry,
        pool,
        cross_encoder=FakeCrossEncoder(),
        reader=lambda question: Reading(
            question, [w.strip("?.,") for w in question.split() if w[0].isupper()]
        ),
    )


BASE = ChatOptions(adapter="none")


async def streamed(chat: ChatService, question: str) -> list[tuple[str, dict[str, Any]]]:
    """The turn's stream as (kind, fields): `delta`s, then `done` with the grading."""
    turn = await chat.start([user(question)], BASE)
    events: list[tuple[str, dict[str, Any]]] = []
    async for item in turn.stream():
        if isinstance(item, Delta):
            events.append(("delta", {"text": item.text}))
        else:
            assert isinstance(item, TurnResult) and item.grounding is not None
            events.append(("done", {**item.grounding.to_dict(), "timings_ms": item.timings_ms}))
    return events


async def json_and_stream(
    chat: ChatService, question: str
) -> tuple[TurnResult, list[tuple[str, dict[str, Any]]]]:
    """The same question answered whole, then streamed."""
    return await chat.answer([user(question)], BASE), await streamed(chat, question)


def test_the_release_vocabulary_holds_what_the_release_mentions(retriever: Retriever) -> None:
    vocabulary = ReleaseVocabulary(retriever).vocabulary(retriever.index_info().collection)
    assert "quickbook" in vocabulary and "zapier" in vocabulary
    assert "jira" not in vocabulary


@pytest.mark.anyio
async def test_off_topic_is_declined_with_the_fallback_and_no_vllm_call(
    tmp_path: Path, retriever: Retriever
) -> None:
    vllm = ScriptedVllm("Paris.")
    chat = service(tmp_path, retriever, vllm, speculate=False)
    answer, events = await json_and_stream(chat, OFF_TOPIC)
    assert answer.text == fallback_sentence("v4.2")
    assert answer.grounding.outcome == "declined" and not answer.grounding.grounded
    assert answer.grounding.abstained == OFF_TOPIC_REASON and not answer.grounding.suggestions
    assert events[0] == ("delta", {"text": fallback_sentence("v4.2")})
    done = events[-1][1]
    assert events[-1][0] == "done" and done["outcome"] == "declined"
    assert vllm.requests == []


@pytest.mark.anyio
async def test_a_subject_the_release_never_mentions_is_suggested_with_pages_and_no_claim(
    tmp_path: Path, retriever: Retriever
) -> None:
    vllm = ScriptedVllm("Yes, Jira is supported.")
    question = "What is the API rate limit per token in Jira?"
    chat = service(tmp_path, retriever, vllm, speculate=False)
    answer, events = await json_and_stream(chat, question)
    grounding = answer.grounding
    assert grounding.outcome == "suggested" and grounding.abstained == UNKNOWN_SUBJECT
    assert answer.text == fallback_sentence("v4.2")
    assert 1 <= len(grounding.suggestions) <= 3
    assert {"file", "heading", "release"} == set(grounding.suggestions[0])
    assert events[-1][1]["outcome"] == "suggested" and events[-1][1]["suggestions"]
    assert vllm.requests == []


@pytest.mark.anyio
async def test_an_invented_number_is_removed_from_json_and_flagged_in_the_stream(
    tmp_path: Path, retriever: Retriever
) -> None:
    vllm = ScriptedVllm(
        "The limit is 120 requests per minute [1]. The Pro plan costs $29 a month [1].\n"
        "Sources: [1]"
    )
    answer, events = await json_and_stream(service(tmp_path, retriever, vllm), RATE_LIMIT)
    grounding = answer.grounding
    assert answer.text == "The limit is 120 requests per minute [1].\nSources: [1]"
    assert grounding.unsupported == ("$29",) and "unsupported_literal" in grounding.warnings
    assert grounding.outcome == "answered"
    done = events[-1][1]
    deltas = "".join(data["text"] for name, data in events if name == "delta")
    assert "$29" in deltas  # streamed text is already shown: flagged, not removed
    assert done["unsupported"] == ["$29"] and "unsupported_literal" in done["warnings"]


@pytest.mark.anyio
async def test_a_bad_marker_is_dropped_from_json_and_stream_answers(
    tmp_path: Path, retriever: Retriever
) -> None:
    vllm = ScriptedVllm("The limit is 120 requests per minute [1][6].\nSources: [1], [6]")
    answer, events = await json_and_stream(service(tmp_path, retriever, vllm), RATE_LIMIT)
    expected = "The limit is 120 requests per minute [1].\nSources: [1]"
    assert answer.text == expected
    assert answer.grounding.grounded and answer.grounding.cited == (1,)
    assert answer.grounding.dropped == 2
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert "".join(deltas).strip() == expected and not any("6" in d for d in deltas)
    assert events[-1][1]["cited"] == [1] and events[-1][1]["warnings"] == ["dropped_citations"]
    assert len(vllm.requests) == 2


@pytest.mark.anyio
async def test_retrieval_off_skips_the_gate(tmp_path: Path, retriever: Retriever) -> None:
    vllm = ScriptedVllm("Paris is the capital of France.")
    chat = service(tmp_path, retriever, vllm)
    answer = await chat.answer([user(OFF_TOPIC)], ChatOptions(adapter="none", retrieval=False))
    assert answer.text == "Paris is the capital of France."
    assert answer.grounding.abstained is None and answer.grounding.warnings == ()
    assert len(vllm.requests) == 1


@pytest.mark.anyio
async def test_the_first_token_goes_out_as_it_comes_and_the_stages_are_reported(
    tmp_path: Path, retriever: Retriever
) -> None:
    vllm = ScriptedVllm("To change the limit, open Settings [1].\nSources: [1]", piece=2)
    chat = service(tmp_path, retriever, vllm)
    events = await streamed(chat, RATE_LIMIT)
    assert events[0] == ("delta", {"text": "To"})  # not held until the word is complete
    timings = events[-1][1]["timings_ms"]
    stamps = ["prepared", "model_first_token", "first_token", "total"]
    assert [timings[s] for s in stamps] == sorted(timings[s] for s in stamps)


@pytest.mark.anyio
async def test_a_generation_started_before_the_outcome_never_reaches_a_suggested_turn(
    tmp_path: Path, retriever: Retriever
) -> None:
    """Speculation sends the prompt to vLLM while the outcome is decided; a turn that is not
    answered drops what vLLM wrote and gives the same answer as without speculation."""
    question = "What is the API rate limit per token in Jira?"
    chat = service(tmp_path, retriever, ScriptedVllm("Yes, Jira is supported."))
    answer, events = await json_and_stream(chat, question)
    assert answer.grounding is not None and answer.grounding.outcome == "suggested"
    assert answer.text == fallback_sentence("v4.2")
    assert [e for e in events if e[0] == "delta"] == [("delta", {"text": answer.text})]
    assert chat.in_flight.counts() == {}


@pytest.mark.anyio
async def test_an_answered_turn_streams_what_the_speculative_generation_wrote(
    tmp_path: Path, retriever: Retriever
) -> None:
    reply = "The limit is 100 requests per minute [1].\nSources: [1]"
    fast = service(tmp_path, retriever, ScriptedVllm(reply), speculate=True)
    slow = service(tmp_path, retriever, ScriptedVllm(reply), speculate=False)
    ahead, after = (
        await fast.answer([user(RATE_LIMIT)], BASE),
        await slow.answer([user(RATE_LIMIT)], BASE),
    )
    assert ahead.text == after.text and ahead.grounding == after.grounding


@pytest.mark.anyio
async def test_a_generation_nobody_reads_is_cancelled_and_leaves_the_adapter() -> None:
    """A stream whose client left before its body began stops generating (and counting)."""
    in_flight = InFlight()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        with in_flight.using("support-v3"):
            started.set()
            try:
                while True:
                    yield "token "
                    await asyncio.sleep(0.01)
            finally:
                stopped.set()

    generation = Generation(endless(), unread_s=0.2)
    await started.wait()
    assert in_flight.count("support-v3") == 1
    await asyncio.wait_for(stopped.wait(), timeout=5)
    assert generation.done and in_flight.count("support-v3") == 0


@pytest.mark.anyio
async def test_a_generation_being_read_is_not_cancelled_for_being_slow_to_start() -> None:
    async def three() -> AsyncIterator[str]:
        for word in ("a", "b", "c"):
            await asyncio.sleep(0.1)
            yield word

    generation = Generation(three(), unread_s=0.05)
    assert [item async for item in generation.items()] == ["a", "b", "c"]
