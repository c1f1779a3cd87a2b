from __future__ import annotations

import pytest

from tandem.answering.house_format import check_answer
from tandem.rag.prompt import fallback_sentence

GOOD_PROCEDURE = """You can turn on two-factor authentication from your profile.

Steps:
1. Open Profile > Security.
2. Click Turn on 2FA and scan the QR code.
3. Enter the 6-digit code to confirm.

Sources: [2]"""


def test_a_house_format_procedure_complies() -> None:
    report = check_answer(GOOD_PROCEDURE, n_blocks=4, release="v4.2")
    assert report.compliant, report.problems
    assert report.cited == [2]


def test_a_short_direct_answer_complies() -> None:
    report = check_answer("The API allows 120 requests per minute per token.\nSources: [1], [3]", 4)
    assert report.compliant, report.problems


def test_the_fallback_must_be_exact_and_uncited() -> None:
    assert check_answer(fallback_sentence("v4.2"), 4, "v4.2").compliant
    assert not check_answer(fallback_sentence("v4.1"), 4, "v4.2").compliant
    cited = fallback_sentence("v4.2") + "\nSources: [1]"
    assert not check_answer(cited, 4, "v4.2").rules["fallback"]


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("The limit is 120.\nSources: [5]", "sources_line"),
        ("The limit is 120.", "sources_line"),
        ("The limit is 120.\nSources: [1], [1]", "sources_line"),
        ("The limit is 120 [7].\nSources: [1]", "sources_line"),
        ("One. Two. Three.\nSources: [1]", "direct_opening"),
        ("Do this:\n1. a\n2. b\nSources: [1]", "steps_list"),
        ("Do this.\nSteps:\n1. a\n3. b\nSources: [1]", "steps_list"),
        ("As an AI, I think it is 120.\nSources: [1]", "tone_length"),
        (("word " * 200).strip() + ".\nSources: [1]", "tone_length"),
        ("", "direct_opening"),
    ],
)
def test_each_rule_catches_its_violation(answer: str, rule: str) -> None:
    report = check_answer(answer, n_blocks=4, release="v4.2")
    assert not report.rules[rule], report.problems
    assert not report.compliant


def test_without_context_a_sources_line_is_wrong() -> None:
    assert check_answer("Hello there.", 0).compliant
    assert not check_answer("Hello there.\nSources: [1]", 0).compliant


def test_version_numbers_are_not_sentence_ends() -> None:
    assert check_answer("Upgrade to 4.2.1 first. Then retry.\nSources: [1]", 2).compliant
