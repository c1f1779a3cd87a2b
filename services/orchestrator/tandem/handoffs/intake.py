"""A customer asks for a person: check the request, find the answer, keep the handoff.

The handoff carries what Tandem answered for that answer id as the answer log has it (the
outcome, the answer text, its sources, the docs release and the adapter version), so the
agent sees exactly what the customer saw, even after a re-index or an adapter swap.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tandem.answering.house_format import is_fallback
from tandem.errors import TooLarge
from tandem.metrics import HANDOFFS
from tandem.rag.prompt import ChatMessage
from tandem.settings import HandoffSettings, Settings
from tandem.stores.feedback import AnswerRecord, FeedbackLog
from tandem.stores.handoffs import HandoffRecord, HandoffStore


@dataclass(frozen=True)
class HandoffAsk:
    """What the customer sent: the answer id, how to reach them, a note, the conversation."""

    answer_id: str
    contact: str
    note: str = ""
    messages: Sequence[ChatMessage] = ()


def check_caps(ask: HandoffAsk, caps: HandoffSettings, max_messages: int) -> None:
    """TooLarge (413) when the contact, the note or the transcript is over its cap."""
    if len(ask.contact) > caps.max_contact_chars:
        raise TooLarge(
            f"contact is {len(ask.contact)} characters; at most {caps.max_contact_chars}"
        )
    if len(ask.note) > caps.max_note_chars:
        raise TooLarge(f"note is {len(ask.note)} characters; at most {caps.max_note_chars}")
    if len(ask.messages) > max_messages:
        raise TooLarge(f"transcript has {len(ask.messages)} messages; at most {max_messages}")
    chars = sum(len(m["content"]) for m in ask.messages)
    if chars > caps.max_transcript_chars:
        raise TooLarge(f"transcript is {chars} characters; at most {caps.max_transcript_chars}")


def outcome_of(answer: AnswerRecord) -> str:
    """The answer's outcome as logged; for answers logged without one, read off the text."""
    if answer.outcome:
        return answer.outcome
    return "declined" if is_fallback(answer.answer) else "answered"


def what_was_answered(answer: AnswerRecord) -> dict[str, Any]:
    """The answer as the handoff keeps it (sources without their block text)."""
    return {
        "id": answer.id,
        "outcome": outcome_of(answer),
        "answer": answer.answer,
        "sources": [{k: v for k, v in s.items() if k != "text"} for s in answer.sources],
        "release": answer.release,
        "adapter": answer.adapter,
        "created": answer.created,
    }


def transcript_of(ask: HandoffAsk, answer: AnswerRecord) -> list[ChatMessage]:
    """The conversation the customer sent; without one, the logged turn and its answer."""
    if ask.messages:
        return [{"role": m["role"], "content": m["content"]} for m in ask.messages]
    return [*answer.conversation, {"role": "assistant", "content": answer.answer}]


def take_handoff(
    ask: HandoffAsk, answers: FeedbackLog, store: HandoffStore, settings: Settings
) -> HandoffRecord:
    """Keep a handoff for `ask`; NotFound for an unknown or expired answer id, TooLarge over
    a cap. Runs in a worker thread (two small SQLite transactions)."""
    check_caps(ask, settings.handoff, settings.max_messages)
    answer = answers.answer(ask.answer_id)
    now = time.time()
    record = HandoffRecord(
        id=f"handoff-{uuid.uuid4().hex[:16]}",
        created=now,
        answer_id=answer.id,
        contact=ask.contact,
        note=ask.note,
        transcript=transcript_of(ask, answer),
        answered=what_was_answered(answer),
        next_attempt=now,
    )
    store.create(record)
    HANDOFFS.labels(outcome=record.outcome).inc()
    return record
