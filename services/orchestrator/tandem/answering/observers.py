"""Who learns of a finished chat turn: /metrics and the answer log, and nothing else.

Each observer receives the `TurnResult` once, whatever became of the turn (answered, failed,
the client gone); a failed turn records the stages it really reached, never a zero time for
one it did not. An observer that fails is logged and never costs the customer the answer.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import anyio

from tandem.answering.result import TurnResult
from tandem.metrics import (
    ADAPTER_REQUESTS,
    ANSWERS,
    CHAT_STAGE_SECONDS,
    CITATIONS_DROPPED,
    TOKENS,
    UNSUPPORTED_LITERALS,
)
from tandem.stores.feedback import AnswerLog, AnswerRecord

log = logging.getLogger("tandem.answering")
STAGES = ("retrieval", "generation", "total")  # the stages /metrics keeps a histogram of


class TurnObserver(Protocol):
    async def finished(self, result: TurnResult) -> None: ...


class MetricsObserver:
    """Prometheus: requests per adapter version and outcome, stage times, tokens, answers."""

    async def finished(self, result: TurnResult) -> None:
        label = result.plan.adapter_label or "base"
        status = "ok" if result.ok else "cancelled" if result.cancelled else "error"
        ADAPTER_REQUESTS.labels(adapter=label, outcome=status).inc()
        for stage in STAGES:
            if stage in result.timings_ms:
                CHAT_STAGE_SECONDS.labels(stage=stage).observe(result.timings_ms[stage] / 1000)
        TOKENS.labels(kind="prompt").inc(result.usage.prompt_tokens)
        TOKENS.labels(kind="completion").inc(result.usage.completion_tokens)
        grounding = result.grounding
        if grounding is None or not result.ok:
            return
        ANSWERS.labels(outcome=grounding.outcome, cited=str(grounding.grounded).lower()).inc()
        CITATIONS_DROPPED.inc(grounding.dropped)
        route = "stream" if result.streamed else "json"
        UNSUPPORTED_LITERALS.labels(route=route).inc(len(grounding.unsupported))


class AnswerLogObserver:
    """Keeps every answer a customer saw, for feedback on it (JSON and streamed alike)."""

    def __init__(self, answers: AnswerLog) -> None:
        self.answers = answers

    async def finished(self, result: TurnResult) -> None:
        if not result.ok:
            return
        await anyio.to_thread.run_sync(self.answers.record_answer, answer_record(result))


def answer_record(result: TurnResult) -> AnswerRecord:
    """What the answer log keeps: the conversation, answer, full source blocks, versions."""
    plan, grounds = result.plan, result.grounds
    sources = grounds.sources if grounds else []
    index = grounds.index if grounds else None
    return AnswerRecord(
        id=plan.id,
        created=time.time(),
        conversation=plan.conversation,
        answer=result.text,
        sources=[
            {
                "n": n,
                "file": s.chunk.file,
                "heading": s.chunk.heading,
                "release": s.chunk.release,
                "text": s.chunk.text,
                "score": round(s.score, 4),
            }
            for n, s in enumerate(sources, start=1)
        ],
        adapter=plan.adapter_label,
        release=index.release if index else None,
        collection=index.collection if index else None,
        outcome=result.grounding.outcome if result.grounding else None,
        pair=plan.release,
    )


async def notify(observers: list[TurnObserver], result: TurnResult) -> None:
    """Every observer, each shielded from the others' failures and from cancellation."""
    with anyio.CancelScope(shield=True):
        for observer in observers:
            try:
                await observer.finished(result)
            except Exception:
                log.exception(
                    "%s could not record turn %s", type(observer).__name__, result.plan.id
                )
