"""What every chat route says about a turn: its sources, index and grading, as API models."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from tandem.answering.ground import Grounds
from tandem.answering.result import TurnResult
from tandem.answering.turn import Turn
from tandem.api.schemas import IndexRef, Source

SNIPPET_CHARS = 240


def sources_of(grounds: Grounds, cited: Collection[int] = ()) -> list[Source]:
    return [
        Source(
            n=n,
            file=s.chunk.file,
            heading=s.chunk.heading,
            release=s.chunk.release,
            score=round(s.score, 4),
            snippet=s.chunk.text[:SNIPPET_CHARS],
            cited=n in cited,
        )
        for n, s in enumerate(grounds.sources, start=1)
    ]


def index_ref(grounds: Grounds) -> IndexRef | None:
    if grounds.index is None:
        return None
    return IndexRef(release=grounds.index.release, collection=grounds.index.collection)


def opening(turn: Turn) -> dict[str, Any]:
    """What is known before generation: sources, adapter, index, the outcome decided so far."""
    ref = index_ref(turn.grounds)
    return {
        "id": turn.id,
        "sources": [s.model_dump() for s in sources_of(turn.grounds)],
        "adapter": turn.plan.adapter_label,
        "index": ref.model_dump() if ref else None,
        "release": turn.plan.release,  # the release pair (docs + adapter); None: no pair
        "outcome": turn.grounds.outcome,  # as decided before generation; `done` has the last
        "abstained": turn.grounds.abstained,
    }


def usage_of(result: TurnResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
    }


def graded(result: TurnResult) -> dict[str, Any]:
    """The grading fields of a finished answer (`Grounding.to_dict`)."""
    assert result.grounding is not None, "only a finished turn is graded"
    return result.grounding.to_dict()
