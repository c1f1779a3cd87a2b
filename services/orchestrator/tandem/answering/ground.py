"""Stage 2 of a chat turn, ground: retrieve the blocks, build the prompt, decide the outcome.

Retrieval and the outcome decision run in worker threads (the embedder, the cross-encoder and
the parser are CPU work). The prompt is built from the blocks and checked against the context
window, so a turn that cannot fit is refused before generation starts. The prompt does not
depend on the outcome, so the turn may start generating before `decide` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from tandem.answering.literals import Evidence
from tandem.answering.outcome import ANSWERED, OutcomeGate, Signals, Verdict, suggestions
from tandem.answering.plan import Plan
from tandem.documents import ScoredChunk
from tandem.llm.budget import TokenCounter, check_budget
from tandem.rag.prompt import ChatMessage, build_messages, fallback_sentence
from tandem.rag.retriever import IndexInfo, Retrieval, Retriever
from tandem.settings import Settings

NO_RETRIEVAL = Verdict(ANSWERED, None, Signals(0.0, None))  # retrieval off: the model answers


@dataclass(frozen=True)
class Grounds:
    """What the answer stands on: the blocks, the serving index, the verdict and the prompt."""

    sources: list[ScoredChunk]
    index: IndexInfo | None  # None: retrieval was off
    verdict: Verdict
    messages: list[ChatMessage]
    pages: list[dict[str, str]] = field(default_factory=list)  # closest pages, best first

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    @property
    def abstained(self) -> str | None:
        """Why no answer is generated (None: one is)."""
        return self.verdict.reason if self.verdict.outcome != ANSWERED else None

    @property
    def release(self) -> str | None:
        return self.index.release if self.index else None

    def fallback(self) -> str:
        """The house fallback sentence for the serving release."""
        return fallback_sentence(self.release or "unknown")

    def evidence(self, conversation: list[ChatMessage]) -> Evidence:
        """What a generated answer may quote: the blocks, the release, the customer's words."""
        parts = [f"{s.chunk.file} {s.chunk.heading}\n{s.chunk.text}" for s in self.sources]
        parts += [m["content"] for m in conversation if m["role"] == "user"]
        return Evidence.of([*parts, self.release or ""])


@dataclass(frozen=True)
class Found:
    """The blocks retrieval found (None: retrieval off) and the prompt built on them."""

    retrieval: Retrieval | None
    messages: list[ChatMessage]


class Grounder:
    """`find` the blocks and build the prompt (fast), then `decide` the outcome on them (the
    cross-encoder and the parser: the slow part, which the turn overlaps with generation)."""

    def __init__(
        self, settings: Settings, retriever: Retriever, gate: OutcomeGate, counter: TokenCounter
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.gate = gate
        self.counter = counter

    async def find(self, plan: Plan) -> Found:
        retrieval: Retrieval | None = None
        if plan.query is not None:
            collection = plan.pair.collection if plan.pair else None  # one pair's docs
            retrieval = await anyio.to_thread.run_sync(
                self.retriever.retrieve, plan.query, plan.top_k, collection
            )
        messages = build_messages(
            plan.conversation,
            [s.chunk for s in retrieval.chunks] if retrieval else None,
            retrieval.index.release if retrieval else None,
        )
        check_budget(
            messages, plan.generation.max_tokens, self.settings.vllm.max_model_len, self.counter
        )
        return Found(retrieval, messages)

    async def decide(self, plan: Plan, found: Found) -> Grounds:
        retrieval = found.retrieval
        if retrieval is None or plan.query is None:
            return Grounds([], None, NO_RETRIEVAL, found.messages)
        verdict = await anyio.to_thread.run_sync(self.gate.assess, plan.query, retrieval)
        limit = self.settings.answering.max_suggestions
        pages = [
            {"file": s.chunk.file, "heading": s.chunk.heading, "release": s.chunk.release}
            for s in suggestions(retrieval.chunks, limit)
        ]
        return Grounds(retrieval.chunks, retrieval.index, verdict, found.messages, pages)
