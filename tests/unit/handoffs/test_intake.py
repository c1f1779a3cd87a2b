"""Taking a handoff: the caps (413), the answer it refers to (404), what it keeps."""

from __future__ import annotations

import time

import pytest

from tandem.errors import NotFound, TooLarge
from tandem.handoffs.intake import HandoffAsk, take_handoff
from tandem.settings import HandoffSettings, Settings
from tandem.stores.feedback import AnswerRecord, InMemoryFeedbackLog
from tandem.stores.handoffs import InMemoryHandoffStore

FALLBACK = "I couldn't find this in the documentation for release v4.2."


@pytest.fixture
def answers() -> InMemoryFeedbackLog:
    log = InMemoryFeedbackLog()
    log.record_answer(
        AnswerRecord(
            id="chat-1", created=time.time(),
            conversation=[{"role": "user", "content": "Does it sync with Jira?"}],
            answer=FALLBACK,
            sources=[{"n": 1, "file": "a.md", "heading": "A", "release": "v4.2", "text": "long",
                      "score": 0.3}],
            adapter="support@v3", release="v4.2", collection="docs-v4.2",
        )
    )  # fmt: skip
    return log


def settings(**caps: int) -> Settings:
    return Settings(handoff=HandoffSettings(**caps), max_messages=3)  # type: ignore[arg-type]


def test_a_handoff_keeps_the_answer_as_logged(answers: InMemoryFeedbackLog) -> None:
    store = InMemoryHandoffStore()
    record = take_handoff(HandoffAsk("chat-1", "ana@example.com"), answers, store, settings())
    kept = store.get(record.id)
    assert kept.answered["outcome"] == "declined"  # read off the fallback sentence
    assert kept.answered["sources"] == [
        {"n": 1, "file": "a.md", "heading": "A", "release": "v4.2", "score": 0.3}
    ]
    assert (kept.release, kept.adapter) == ("v4.2", "support@v3")
    assert kept.transcript[-1] == {"role": "assistant", "content": FALLBACK}  # no messages sent


def test_unknown_answer_is_not_found(answers: InMemoryFeedbackLog) -> None:
    with pytest.raises(NotFound):
        take_handoff(HandoffAsk("chat-x", "a@b.c"), answers, InMemoryHandoffStore(), settings())


@pytest.mark.parametrize(
    "ask",
    [
        HandoffAsk("chat-1", "a" * 11),
        HandoffAsk("chat-1", "a@b.c", note="n" * 21),
        HandoffAsk("chat-1", "a@b.c", messages=[{"role": "user", "content": "q" * 31}]),
        HandoffAsk("chat-1", "a@b.c", messages=[{"role": "user", "content": "q"}] * 4),
    ],
    ids=["contact", "note", "transcript", "messages"],
)
def test_over_a_cap_is_too_large(answers: InMemoryFeedbackLog, ask: HandoffAsk) -> None:
    caps = settings(max_contact_chars=10, max_note_chars=20, max_transcript_chars=30)
    with pytest.raises(TooLarge):
        take_handoff(ask, answers, InMemoryHandoffStore(), caps)
