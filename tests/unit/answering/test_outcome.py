"""The outcome rule on its signals, and the pages a suggestion offers."""

from __future__ import annotations

from tandem.answering.outcome import (
    ANSWERED,
    DECLINED,
    OFF_TOPIC,
    SUGGESTED,
    UNKNOWN_SUBJECT,
    WEAK_EVIDENCE,
    Signals,
    decide,
    pages_text,
    suggestions,
)
from tandem.documents import Chunk, ScoredChunk
from tandem.settings import AnsweringSettings

RULE = AnsweringSettings(
    min_evidence=0.0,
    max_unknown_subject=0,
    subject_override=4.0,
    declined_similarity=0.2,
    declined_evidence=-8.0,
)


def test_strong_evidence_about_what_the_release_covers_is_answered() -> None:
    assert decide(Signals(0.6, 2.5, ("mail", "rules")), RULE) == (ANSWERED, None)


def test_weak_evidence_is_suggested() -> None:
    assert decide(Signals(0.6, -1.0), RULE) == (SUGGESTED, WEAK_EVIDENCE)


def test_a_subject_the_release_never_uses_is_suggested_unless_the_evidence_is_very_strong() -> None:
    asana = Signals(0.5, 2.0, ("asana", "tasks"), ("asana",))
    assert decide(asana, RULE) == (SUGGESTED, UNKNOWN_SUBJECT)
    mailbox = Signals(0.7, 4.8, ("mailbox",), ("mailbox",))  # the customer's word for it
    assert decide(mailbox, RULE) == (ANSWERED, None)


def test_nothing_relevant_at_all_is_declined() -> None:
    assert decide(Signals(0.1, -10.5), RULE) == (DECLINED, OFF_TOPIC)
    france = Signals(0.3, -10.5, ("capital", "france"), ("capital", "france"))
    assert decide(france, RULE) == (DECLINED, OFF_TOPIC)  # nothing it asks about is known
    asana = Signals(0.3, -10.5, ("asana", "tasks"), ("asana",))
    assert decide(asana, RULE)[0] == SUGGESTED  # about the product: pages help


def test_without_a_cross_encoder_only_the_subject_and_similarity_decide() -> None:
    assert decide(Signals(0.6, None), RULE) == (ANSWERED, None)
    assert decide(Signals(0.6, None, ("x",), ("x",)), RULE)[0] == SUGGESTED


def block(file: str, heading: str) -> ScoredChunk:
    return ScoredChunk(Chunk(file, heading, "text", release="v4.2"), score=0.1)


def test_suggestions_are_the_closest_pages_each_once() -> None:
    found = [block("a.md", "A"), block("a.md", "A"), block("b.md", "B"), block("c.md", "C")]
    pages = suggestions(found, 2)
    assert [(p.chunk.file, p.chunk.heading) for p in pages] == [("a.md", "A"), ("b.md", "B")]


def test_the_pages_as_text_for_clients_that_show_only_text() -> None:
    text = pages_text([{"file": "a.md", "heading": "A", "release": "v4.2"}])
    assert text.endswith("\n- a.md › A (v4.2)") and pages_text([]) == ""
