"""One chat turn end to end: retrieve, build the prompt, generate with the right adapter."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from tandem.documents import ScoredChunk
from tandem.errors import BadInput, NotFound
from tandem.llm.adapters import AdapterRegistry, AdapterVersion
from tandem.llm.client import Generation, Usage, VllmClient
from tandem.llm.inflight import InFlight
from tandem.llm.pool import Reload, VllmPool
from tandem.metrics import ADAPTER_REQUESTS
from tandem.rag.prompt import ChatMessage, build_messages
from tandem.rag.retriever import IndexInfo, Retriever
from tandem.settings import Settings
from tandem.state.feedback import AnswerLog, AnswerRecord

BASE_ADAPTER = "none"
SHORT_QUERY_WORDS = 6
log = logging.getLogger("tandem.chat")


@dataclass
class ChatOptions:
    adapter: str | None = None  # slot name, None for the default slot, "none" for the base
    retrieval: bool = True
    top_k: int | None = None
    conversation_id: str | None = None


@dataclass
class PreparedChat:
    """Everything decided before generation starts."""

    id: str
    model: str
    adapter: AdapterVersion | None
    messages: list[ChatMessage]
    sources: list[ScoredChunk]
    index: IndexInfo | None
    started: float
    retrieval_ms: float = 0.0
    in_flight: int | None = None  # token of the in-flight count for the adapter
    conversation: list[ChatMessage] = field(default_factory=list)  # as the customer sent it

    def timings(self, generation_ms: float) -> dict[str, float]:
        total = (time.perf_counter() - self.started) * 1000
        return {
            "retrieval": round(self.retrieval_ms, 1),
            "generation": round(generation_ms, 1),
            "total": round(total, 1),
        }


@dataclass
class ChatAnswer:
    prepared: PreparedChat
    generation: Generation
    timings_ms: dict[str, float] = field(default_factory=dict)


def retrieval_query(conversation: Sequence[ChatMessage]) -> str:
    """The last user turn; a short follow-up also carries the previous user turn."""
    users = [m["content"] for m in conversation if m["role"] == "user"]
    last = users[-1]
    if len(last.split()) < SHORT_QUERY_WORDS and len(users) > 1:
        return f"{users[-2]}\n{last}"
    return last


def sticky_key(conversation: Sequence[ChatMessage], conversation_id: str | None) -> str | None:
    """What keeps a conversation on one adapter version: its id, else its first user turn."""
    if conversation_id:
        return f"id:{conversation_id}"
    first = next((m["content"] for m in conversation if m["role"] == "user"), None)
    return f"first:{first}" if first else None


def record_error(adapter: AdapterVersion | None) -> None:
    """Count a failed request against the adapter version that served it."""
    ADAPTER_REQUESTS.labels(adapter=adapter.label if adapter else "base", outcome="error").inc()


class ChatService:
    """Plain async functions the chat routes (native and OpenAI-compatible) call."""

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        registry: AdapterRegistry,
        pool: VllmPool,
        answers: AnswerLog | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.registry = registry
        self.pool = pool
        self.answers = answers  # every answer given is kept here, for feedback on it
        self.in_flight = InFlight(max_age_s=2 * settings.vllm.request_timeout_s)

    def resolve_adapter(self, name: str | None, sticky: str | None) -> AdapterVersion | None:
        """The adapter version serving this request (canary-aware), or None for the base."""
        if name == BASE_ADAPTER:
            return None
        slot = name or self.settings.default_slot
        if slot not in self.registry.slots():
            raise NotFound(f"adapter slot {slot!r} does not exist (known: {self.registry.slots()})")
        return self.registry.route(slot, sticky)

    async def prepare(
        self, conversation: Sequence[ChatMessage], options: ChatOptions
    ) -> PreparedChat:
        started = time.perf_counter()
        top_k = options.top_k or self.settings.retrieval.top_k
        if not 1 <= top_k <= self.settings.retrieval.max_top_k:
            raise BadInput(f"top_k must be between 1 and {self.settings.retrieval.max_top_k}")
        adapter = self.resolve_adapter(
            options.adapter, sticky_key(conversation, options.conversation_id)
        )
        token = self.in_flight.enter(adapter.served_name) if adapter else None
        sources: list[ScoredChunk] = []
        index: IndexInfo | None = None
        if options.retrieval:
            query = retrieval_query(conversation)
            try:
                result = await anyio.to_thread.run_sync(self.retriever.retrieve, query, top_k)
            except Exception:
                self.in_flight.leave(token)
                record_error(adapter)
                raise
            sources, index = result.chunks, result.index
        retrieval_ms = (time.perf_counter() - started) * 1000
        messages = build_messages(
            conversation,
            [s.chunk for s in sources] if options.retrieval else None,
            index.release if index else None,
        )
        return PreparedChat(
            id=f"chat-{uuid.uuid4().hex[:16]}",
            model=adapter.served_name if adapter else self.settings.model.name,
            adapter=adapter,
            messages=messages,
            sources=sources,
            index=index,
            started=started,
            retrieval_ms=retrieval_ms,
            in_flight=token,
            conversation=list(conversation),
        )

    async def keep(self, prepared: PreparedChat, text: str) -> None:
        """Log the answer as the customer saw it (JSON and streamed, native and OpenAI)."""
        if self.answers is None:
            return
        record = answer_record(prepared, text)
        try:
            await anyio.to_thread.run_sync(self.answers.record_answer, record)
        except Exception:  # the customer still gets the answer; feedback on it will 404
            log.exception("could not log answer %s for feedback", prepared.id)

    def _reload(self, prepared: PreparedChat) -> Reload | None:
        """How to put the adapter back on a replica that lost it (it restarted)."""
        adapter = prepared.adapter
        if adapter is None:
            return None

        async def reload(client: VllmClient) -> None:
            await client.load_adapter(adapter.served_name, str(adapter.path))

        return reload

    async def answer(self, conversation: Sequence[ChatMessage], options: ChatOptions) -> ChatAnswer:
        """A complete answer (non-streamed)."""
        prepared = await self.prepare(conversation, options)
        gen_started = time.perf_counter()
        try:
            generation = await self.pool.chat(
                prepared.model, prepared.messages, self.settings.generation, self._reload(prepared)
            )
        except Exception:
            record_error(prepared.adapter)
            raise
        finally:
            self.in_flight.leave(prepared.in_flight)
        generation.text = generation.text.strip()
        gen_ms = (time.perf_counter() - gen_started) * 1000
        await self.keep(prepared, generation.text)
        return ChatAnswer(prepared, generation, prepared.timings(gen_ms))

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """("delta", {...}) events, then one ("done", {...}) with usage and timings."""
        gen_started = time.perf_counter()
        usage = Usage()
        parts: list[str] = []
        try:
            async for item in self.pool.chat_stream(
                prepared.model, prepared.messages, self.settings.generation, self._reload(prepared)
            ):
                if isinstance(item, Usage):
                    usage = item
                else:
                    parts.append(item)
                    yield "delta", {"text": item}
        finally:
            self.in_flight.leave(prepared.in_flight)
        gen_ms = (time.perf_counter() - gen_started) * 1000
        await self.keep(prepared, "".join(parts).strip())
        yield (
            "done",
            {
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                },
                "timings_ms": prepared.timings(gen_ms),
            },
        )


def answer_record(prepared: PreparedChat, text: str) -> AnswerRecord:
    """What the answer log keeps: the conversation, answer, full source blocks, versions."""
    sources = [
        {
            "n": n,
            "file": s.chunk.file,
            "heading": s.chunk.heading,
            "release": s.chunk.release,
            "text": s.chunk.text,
            "score": round(s.score, 4),
        }
        for n, s in enumerate(prepared.sources, start=1)
    ]
    return AnswerRecord(
        id=prepared.id,
        created=time.time(),
        conversation=prepared.conversation,
        answer=text,
        sources=sources,
        adapter=prepared.adapter.label if prepared.adapter else None,
        release=prepared.index.release if prepared.index else None,
        collection=prepared.index.collection if prepared.index else None,
    )
