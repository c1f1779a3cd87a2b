"""Stage 2 of a chat turn, ground: retrieve the blocks, decide the outcome, build the prompt.

Retrieval and the outcome decision run in a worker thread (the embedder, the cross-encoder and
the parser are CPU work). The prompt is built here too, from the blocks, and checked against
the context window, so a turn that cannot fit is refused before generation starts.
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


class Grounder:
    def __init__(
        self, settings: Settings, retriever: Retriever, gate: OutcomeGate, counter: TokenCounter
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.gate = gate
        self.counter = counter

    async def ground(self, plan: Plan) -> Grounds:
        sources: list[ScoredChunk] = []
        index: IndexInfo | None = None
        verdict = NO_RETRIEVAL
        if plan.query is not None:
            result, verdict = await anyio.to_thread.run_sync(self._retrieve, plan.query, plan.top_k)
            sources, index = result.chunks, result.index
        messages = build_messages(
            plan.conversation,
            [s.chunk for s in sources] if index is not None else None,
            index.release if index else None,
        )
        check_budget(
            messages, plan.generation.max_tokens, self.settings.vllm.max_model_len, self.counter
        )
        limit = self.settings.answering.max_suggestions
        pages = [
            {"file": s.chunk.file, "heading": s.chunk.heading, "release": s.chunk.release}
            for s in suggestions(sources, limit)
        ]
        return Grounds(sources, index, verdict, messages, pages)

    def _retrieve(self, query: str, top_k: int) -> tuple[Retrieval, Verdict]:
        """The candidate blocks and the outcome decided on them (in a worker thread)."""
        result = self.retriever.retrieve(query, top_k)
        return result, self.gate.assess(query, result)
