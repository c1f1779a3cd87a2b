"""What a question is about, with spaCy's real English pipeline."""

from __future__ import annotations

from tandem.answering.subject import read_question, unknown
from tandem.rag.parser import load_parser


def test_the_customers_setup_is_context_and_the_asking_sentence_the_subject() -> None:
    question = (
        "I run paperless on my Synology with a Fujitsu scanner and my bank is ING. "
        "How do I get the mail rules to put labels on my post?"
    )
    reading = read_question(load_parser(), question)
    assert {"mail", "rules", "labels"} <= set(reading.subject)
    assert not {"synology", "fujitsu", "scanner", "bank"} & set(reading.subject)
    assert reading.asking == "How do I get the mail rules to put labels on my post?"


def test_a_question_without_a_question_mark_asks_in_its_last_sentence() -> None:
    subject = read_question(load_parser(), "We use Asana a lot. I want Kestrel to sync with Asana")
    assert "asana" in subject.subject


def test_unknown_words_are_those_the_release_never_uses() -> None:
    release = {"mail", "rule", "label", "paperless", "max", "upload", "size", "e", "signatur"}
    assert unknown(["mail", "rules", "quickbooks"], release) == ("quickbooks",)
    assert unknown(["e-signatures"], release) == ()  # every part is known
    assert unknown(["paperless_max_upload_size"], release) == ("paperless_max_upload_size",)
