"""Stage 5 of a chat turn, outcome: the graded answer and everything observers record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tandem.answering.checks import CitationFilter
from tandem.answering.ground import Grounds
from tandem.answering.literals import UNSUPPORTED_LITERAL
from tandem.answering.plan import Plan
from tandem.llm.client import Usage

# `warnings`
UNCITED = "uncited_answer"  # an answer (not a fallback) that cites no block given
DROPPED = "dropped_citations"  # markers pointing at no given block were removed


@dataclass(frozen=True)
class Grounding:
    """What the response says about the answer: its outcome and what backs it."""

    outcome: str  # answered / suggested / declined (tandem/answering/outcome.py)
    grounded: bool  # answered, citing at least one documentation block it was given
    abstained: str | None  # why it was not answered (None when answered)
    cited: tuple[int, ...] = ()
    dropped: int = 0
    warnings: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()  # literals of the answer no given block holds
    suggestions: tuple[dict[str, str], ...] = ()  # the closest pages: file, heading, release

    def to_dict(self) -> dict[str, Any]:
        """The fields the API adds to an answer (the streaming `done` event carries all)."""
        return {
            "outcome": self.outcome,
            "grounded": self.grounded,
            "abstained": self.abstained,
            "warnings": list(self.warnings),
            "unsupported": list(self.unsupported),
            "suggestions": list(self.suggestions),
            "cited": list(self.cited),
        }


def judge(
    outcome: str,
    abstained: str | None,
    citations: CitationFilter,
    unsupported: Sequence[str],
    suggestions: Sequence[dict[str, str]],
    retrieval: bool,
) -> Grounding:
    """Grade a finished answer (the turn's observer counts it for /metrics)."""
    answered = outcome == "answered"
    cited = tuple(sorted(citations.cited)) if answered else ()
    warnings = []
    if citations.dropped:
        warnings.append(DROPPED)
    if retrieval and answered and not cited:
        warnings.append(UNCITED)
    if unsupported:
        warnings.append(UNSUPPORTED_LITERAL)
    return Grounding(
        outcome,
        bool(cited),
        abstained,
        cited,
        len(citations.dropped),
        tuple(warnings),
        tuple(unsupported),
        tuple(suggestions) if outcome == "suggested" else (),  # declined: nothing relevant
    )


@dataclass
class TurnResult:
    """A finished turn as observers see it: answered or failed, with what really happened.

    `grounds` is None when the turn failed before its blocks were found; `grounding` is None
    when it failed before the answer was graded (`error` says why).
    """

    plan: Plan
    grounds: Grounds | None
    streamed: bool  # the customer saw it arrive delta by delta (its literals are flagged)
    text: str = ""
    grounding: Grounding | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # the stages reached
    error: BaseException | None = None
    cancelled: bool = False  # the client went away mid-answer

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled and self.grounding is not None
