"""The literal check: what an answer states verbatim must come from what it was given."""

from __future__ import annotations

import random

import pytest

from tandem.answering.literals import (
    Evidence,
    LiteralCheck,
    has_claims,
    literals,
    remove_unsupported,
    unsupported,
)

BLOCK = (
    "Set PAPERLESS_OCR_LANGUAGE to deu+eng. The default is `eng`. The API allows 1,000 "
    "requests per minute. See https://docs.paperless-ngx.com/setup/ and /usr/src/paperless. "
    'Click "Save changes". It takes ten minutes.'
)
EVIDENCE = Evidence.of([BLOCK, "v3.0.5"])
ANSWER = (
    "Set PAPERLESS_OCR_LANGUAGE to `deu+eng` [1]. The Pro plan costs $29 a month [2].\n"
    "Steps:\n"
    '1. Open https://docs.paperless-ngx.com/setup/ and click "Save changes" [1].\n'
    "2. Add PAPERLESS_FAKE_SETTING=true to /etc/paperless.conf.\n"
    "Sources: [1], [2]"
)


def test_every_kind_of_literal_is_found_once() -> None:
    found = literals(ANSWER)
    for literal in (
        "https://docs.paperless-ngx.com/setup/",
        "/etc/paperless.conf",
        "deu+eng",
        "PAPERLESS_OCR_LANGUAGE",
        "PAPERLESS_FAKE_SETTING",
        "Save changes",
        "$29",
    ):
        assert found.count(literal) == 1, literal
    assert "1" not in found and "2" not in found  # citation markers and list numbers


def test_literals_match_normalised_numbers_words_case_and_quotes() -> None:
    answer = "It allows 1000 requests per minute and takes 10 minutes; set paperless_ocr_language."
    assert unsupported(EVIDENCE, answer) == []
    assert unsupported(EVIDENCE, "Version 3.0.5 allows 10000 requests.") == ["10000"]


def test_unsupported_literals_are_the_invented_ones() -> None:
    assert unsupported(EVIDENCE, ANSWER) == ["/etc/paperless.conf", "PAPERLESS_FAKE_SETTING", "$29"]


def test_a_whole_answer_loses_only_the_sentences_and_steps_carrying_them() -> None:
    text, missing = remove_unsupported(EVIDENCE, ANSWER)
    assert missing == ["/etc/paperless.conf", "PAPERLESS_FAKE_SETTING", "$29"]
    assert text == (
        "Set PAPERLESS_OCR_LANGUAGE to `deu+eng` [1].\n"
        "Steps:\n"
        '1. Open https://docs.paperless-ngx.com/setup/ and click "Save changes" [1].\n'
        "Sources: [1], [2]"
    )
    assert has_claims(text)


def test_an_answer_of_nothing_but_invented_facts_has_no_claims_left() -> None:
    text, _ = remove_unsupported(EVIDENCE, "It costs $29 a month.\nSources: [1]")
    assert not has_claims(text)


def test_the_customers_own_numbers_are_evidence() -> None:
    evidence = Evidence.of([BLOCK, "We are 6 people in the office."])
    assert unsupported(evidence, "For 6 people, the API allows 1,000 requests.") == []


@pytest.mark.parametrize("seed", range(30))
def test_a_stream_split_anywhere_finds_what_the_whole_answer_finds(seed: int) -> None:
    cuts = sorted(random.Random(seed).sample(range(1, len(ANSWER)), 6))
    pieces = [ANSWER[a:b] for a, b in zip([0, *cuts], [*cuts, len(ANSWER)], strict=True)]
    check = LiteralCheck(EVIDENCE)
    passed = "".join(check.feed(piece) for piece in pieces) + check.flush()
    assert passed == ANSWER  # a stream is flagged, never rewritten
    assert check.unsupported == unsupported(EVIDENCE, ANSWER)
