"""One chat turn end to end: retrieve, build the prompt, generate with the right adapter."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from tandem.adapters.inflight import InFlight
from tandem.adapters.registry import AdapterRegistry, AdapterVersion
from tandem.answering.grounding import CitationFilter, Grounding, check_citations, judge
from tandem.answering.house_format import is_fallback
from tandem.answering.literals import Evidence, LiteralCheck, has_claims, remove_unsupported
from tandem.answering.outcome import (
    ANSWERED,
    MODEL_FALLBACK,
    NO_CLAIMS_LEFT,
    SUGGESTED,
    OutcomeGate,
    QuestionReader,
    Verdict,
    suggestions,
)
from tandem.answering.sanitize import StreamSanitizer, sanitize
from tandem.documents import ScoredChunk
from tandem.errors import BadInput, NotFound, TimedOut
from tandem.llm.budget import TokenCounter, check_budget, counter_for
from tandem.llm.client import Generation, Usage, VllmClient
from tandem.llm.pool import Reload, VllmPool
from tandem.metrics import ADAPTER_REQUESTS, ANSWERS, CITATIONS_DROPPED, UNSUPPORTED_LITERALS
from tandem.rag.cross_encoder import PairScorer
from tandem.rag.prompt import ChatMessage, build_messages, fallback_sentence
from tandem.rag.retriever import IndexInfo, Retrieval, Retriever
from tandem.settings import GenerationSettings, Settings
from tandem.stores.feedback import AnswerLog, AnswerRecord

BASE_ADAPTER = "none"
SHORT_QUERY_WORDS = 6  # a user turn this short leans on the conversation for its topic
CONTEXT_TURNS = 2  # earlier user turns a follow-up may carry into its retrieval query
_FOLLOW_UP_START = re.compile(
    r"^(and|also|but|or|so|then|what about|how about|same for|what if)\b", re.IGNORECASE
)
log = logging.getLogger("tandem.answering.turn")


@dataclass
class ChatOptions:
    adapter: str | None = None  # slot name, None for the default slot, "none" for the base
    retrieval: bool = True
    top_k: int | None = None
    conversation_id: str | None = None
    generation: GenerationSettings | None = None  # None: the configured defaults


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
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    verdict: Verdict | None = None  # the outcome decided before generation (with retrieval)
    max_suggestions: int = 3
    marks: dict[str, float] = field(default_factory=dict)  # stage -> ms since `started`

    @property
    def outcome(self) -> str:
        return self.verdict.outcome if self.verdict else ANSWERED

    @property
    def abstained(self) -> str | None:
        """Why no answer is generated (None: one is)."""
        return self.verdict.reason if self.verdict and self.outcome != ANSWERED else None

    def suggestions(self) -> list[dict[str, str]]:
        """The closest pages (file, heading, release), best first."""
        pages = suggestions(self.sources, self.max_suggestions)
        return [
            {"file": s.chunk.file, "heading": s.chunk.heading, "release": s.chunk.release}
            for s in pages
        ]

    def evidence(self) -> Evidence:
        """What a generated answer may quote: the blocks, the release, the customer's words."""
        parts = [f"{s.chunk.file} {s.chunk.heading}\n{s.chunk.text}" for s in self.sources]
        parts += [m["content"] for m in self.conversation if m["role"] == "user"]
        return Evidence.of([*parts, self.index.release if self.index else ""])

    def mark(self, stage: str) -> None:
        """Note when this request first reached `stage` (reported in `timings_ms`)."""
        self.marks.setdefault(stage, round((time.perf_counter() - self.started) * 1000, 1))

    def declined(self) -> Generation:
        """The house fallback sentence for the serving release, in place of a generation."""
        release = self.index.release if self.index else "unknown"
        return Generation(text=fallback_sentence(release), usage=Usage(), finish_reason="stop")

    def timings(self, generation_ms: float) -> dict[str, float]:
        total = (time.perf_counter() - self.started) * 1000
        return {
            "retrieval": round(self.retrieval_ms, 1),
            "generation": round(generation_ms, 1),
            "total": round(total, 1),
            **self.marks,
        }


@dataclass
class ChatAnswer:
    prepared: PreparedChat
    generation: Generation
    grounding: Grounding
    timings_ms: dict[str, float] = field(default_factory=dict)


def is_follow_up(turn: str) -> bool:
    """A turn that needs the conversation for its topic ("and on the mobile app?")."""
    text = turn.strip()
    return len(text.split()) < SHORT_QUERY_WORDS or bool(_FOLLOW_UP_START.match(text))


def retrieval_query(conversation: Sequence[ChatMessage]) -> str:
    """The last user turn; a follow-up also carries the earlier turns back to its topic.

    Earlier turns are added nearest first, up to the last standalone question, and the last
    turn comes twice so the dense embedding leans toward it (BM25 counts each term once).
    """
    users = [m["content"].strip() for m in conversation if m["role"] == "user"]
    last = users[-1]
    if len(users) == 1 or not is_follow_up(last):
        return last
    context: list[str] = []
    for turn in reversed(users[:-1]):
        context.append(turn)
        if len(context) == CONTEXT_TURNS or not is_follow_up(turn):
            break
    return "\n".join([last, last, *context])


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
        counter: TokenCounter | None = None,
        answers: AnswerLog | None = None,
        cross_encoder: PairScorer | None = None,
        reader: QuestionReader | None = None,
    ) -> None:
        self.settings = settings
        self.counter = counter or counter_for(settings.model_path)
        self.link_hosts = {h.lower() for h in settings.link_hosts}  # answers may link there
        self.retriever = retriever
        self.registry = registry
        self.pool = pool
        self.gate = OutcomeGate(retriever, settings.answering, cross_encoder, reader)
        self.answers = answers  # every answer given is kept here, for feedback on it
        self.in_flight = InFlight(max_age_s=2 * settings.vllm.request_timeout_s)

    def resolve_adapter(self, name: str | None, sticky: str | None) -> AdapterVersion | None:
        """The adapter version serving this request (canary-aware), or None for the base."""
        if name == BASE_ADAPTER:
            return None
        slot = name or self.settings.default_slot
        if not self.registry.versions(slot):  # (not `slots()`: that lists every slot folder)
            raise NotFound(f"adapter slot {slot!r} does not exist (known: {self.registry.slots()})")
        return self.registry.route(slot, sticky)

    def _retrieve(self, query: str, top_k: int) -> tuple[Retrieval, Verdict]:
        """The candidate blocks and the outcome decided on them (in a worker thread)."""
        result = self.retriever.retrieve(query, top_k)
        return result, self.gate.assess(query, result)

    async def prepare(
        self, conversation: Sequence[ChatMessage], options: ChatOptions
    ) -> PreparedChat:
        started = time.perf_counter()
        self.pool.require_serving()  # vLLM down or full: 503 now, not after retrieval
        top_k = options.top_k or self.settings.retrieval.top_k
        if not 1 <= top_k <= self.settings.retrieval.max_top_k:
            raise BadInput(f"top_k must be between 1 and {self.settings.retrieval.max_top_k}")
        adapter = self.resolve_adapter(
            options.adapter, sticky_key(conversation, options.conversation_id)
        )
        token = self.in_flight.enter(adapter.served_name) if adapter else None
        sources: list[ScoredChunk] = []
        index: IndexInfo | None = None
        verdict: Verdict | None = None
        if options.retrieval:
            query = retrieval_query(conversation)
            try:
                result, decided = await anyio.to_thread.run_sync(self._retrieve, query, top_k)
            except Exception:
                self.in_flight.leave(token)
                record_error(adapter)
                raise
            sources, index, verdict = result.chunks, result.index, decided
        retrieval_ms = (time.perf_counter() - started) * 1000
        messages = build_messages(
            conversation,
            [s.chunk for s in sources] if options.retrieval else None,
            index.release if index else None,
        )
        generation = options.generation or self.settings.generation
        try:
            check_budget(
                messages, generation.max_tokens, self.settings.vllm.max_model_len, self.counter
            )
        except BadInput:
            self.in_flight.leave(token)
            raise
        prepared = PreparedChat(
            id=f"chat-{uuid.uuid4().hex[:16]}",
            model=adapter.served_name if adapter else self.settings.model.name,
            adapter=adapter,
            messages=messages,
            sources=sources,
            index=index,
            started=started,
            retrieval_ms=retrieval_ms,
            in_flight=token,
            generation=generation,
            verdict=verdict,
            max_suggestions=self.settings.answering.max_suggestions,
            conversation=list(conversation),
        )
        prepared.mark("prepared")
        return prepared

    async def keep(self, prepared: PreparedChat, text: str, outcome: str) -> None:
        """Log the answer as the customer saw it (JSON and streamed, native and OpenAI)."""
        if self.answers is None:
            return
        record = answer_record(prepared, text, outcome)
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
        """A complete answer (non-streamed): sentences with unsupported literals removed."""
        prepared = await self.prepare(conversation, options)
        gen_started = time.perf_counter()
        try:
            with anyio.fail_after(self.settings.vllm.request_timeout_s):
                generation = (
                    prepared.declined() if prepared.abstained else await self._chat(prepared)
                )
        except TimeoutError as error:
            record_error(prepared.adapter)
            raise TimedOut("the answer took longer than the request deadline") from error
        except Exception:
            record_error(prepared.adapter)
            raise
        finally:
            self.in_flight.leave(prepared.in_flight)
        text = sanitize(generation.text, self.link_hosts).strip()
        generation.text, citations = check_citations(text, len(prepared.sources))
        outcome, reason = after_generation(prepared, generation.text)
        unsupported: list[str] = []
        if outcome == ANSWERED:  # without retrieval only the customer's words back it
            checked, unsupported = remove_unsupported(prepared.evidence(), generation.text)
            if prepared.index is not None and self.settings.answering.remove_unsupported:
                generation.text = checked
                if not has_claims(checked):
                    outcome, reason = SUGGESTED, NO_CLAIMS_LEFT
                    generation.text = prepared.declined().text
        grounding = self._judge(prepared, outcome, reason, citations, unsupported)
        gen_ms = (time.perf_counter() - gen_started) * 1000
        await self.keep(prepared, generation.text, grounding.outcome)
        observe(grounding, "json")
        return ChatAnswer(prepared, generation, grounding, prepared.timings(gen_ms))

    def _judge(
        self,
        prepared: PreparedChat,
        outcome: str,
        reason: str | None,
        citations: CitationFilter,
        unsupported: Sequence[str],
    ) -> Grounding:
        retrieval = prepared.index is not None
        pages = prepared.suggestions() if retrieval else []
        return judge(outcome, reason, citations, unsupported, pages, retrieval)

    async def _chat(self, prepared: PreparedChat) -> Generation:
        return await self.pool.chat(
            prepared.model, prepared.messages, prepared.generation, self._reload(prepared)
        )

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """("delta", {...}) events with citations checked, then one ("done", {...}).

        `done` carries usage, timings and the grounding (see `Grounding.to_dict`): a streamed
        sentence is already shown, so unsupported literals are flagged there, not removed.
        """
        gen_started = time.perf_counter()
        deadline = gen_started + self.settings.vllm.request_timeout_s
        usage = Usage()
        citations = CitationFilter(len(prepared.sources))
        literal_check = LiteralCheck(prepared.evidence())
        sent: list[str] = []
        try:
            async for item in self._generate(prepared):
                if time.perf_counter() > deadline:
                    raise TimedOut("the answer took longer than the request deadline")
                if isinstance(item, Usage):
                    usage = item
                elif text := literal_check.feed(citations.feed(item)):
                    sent.append(text)
                    prepared.mark("first_token")
                    yield "delta", {"text": text}
            if text := literal_check.feed(citations.flush()):
                sent.append(text)
                yield "delta", {"text": text}
            literal_check.flush()
        finally:
            self.in_flight.leave(prepared.in_flight)
        answer = "".join(sent).strip()
        outcome, reason = after_generation(prepared, answer)
        unsupported = literal_check.unsupported if outcome == ANSWERED else []
        grounding = self._judge(prepared, outcome, reason, citations, unsupported)
        gen_ms = (time.perf_counter() - gen_started) * 1000
        await self.keep(prepared, answer, grounding.outcome)
        observe(grounding, "stream")
        yield (
            "done",
            {
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                },
                "timings_ms": prepared.timings(gen_ms),
                **grounding.to_dict(),
            },
        )

    async def _generate(self, prepared: PreparedChat) -> AsyncIterator[str | Usage]:
        """vLLM's stream, sanitised; or the fallback sentence whole when the gate declined."""
        if prepared.abstained:
            yield prepared.declined().text
            return
        safe = StreamSanitizer(self.link_hosts)
        async for item in self.pool.chat_stream(
            prepared.model, prepared.messages, prepared.generation, self._reload(prepared)
        ):
            prepared.mark("model_first_token")
            yield item if isinstance(item, Usage) else safe.feed(item)
        yield safe.flush()


def after_generation(prepared: PreparedChat, text: str) -> tuple[str, str | None]:
    """The outcome and its reason once generated: a model that wrote the house fallback
    sentence itself leaves the customer with the closest pages (`suggested`)."""
    if prepared.outcome == ANSWERED and is_fallback(text):
        return SUGGESTED, MODEL_FALLBACK
    return prepared.outcome, prepared.abstained


def observe(grounding: Grounding, route: str) -> None:
    """Count a finished answer for /metrics: its outcome, dropped markers, literals."""
    ANSWERS.labels(outcome=grounding.outcome, cited=str(grounding.grounded).lower()).inc()
    CITATIONS_DROPPED.inc(grounding.dropped)
    UNSUPPORTED_LITERALS.labels(route=route).inc(len(grounding.unsupported))


def answer_record(prepared: PreparedChat, text: str, outcome: str) -> AnswerRecord:
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
        outcome=outcome,
    )
