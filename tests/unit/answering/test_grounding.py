"""The release vocabulary, the citation check (streamed and whole) and the grading."""

from __future__ import annotations

from tandem.answering.checks import CitationFilter, check_citations
from tandem.answering.literals import UNSUPPORTED_LITERAL
from tandem.answering.result import DROPPED, UNCITED, judge
from tandem.answering.vocabulary import Vocabulary
from tandem.documents import Chunk
from tandem.rag.prompt import fallback_sentence

RATE_LIMITS = Chunk(
    "api/rate-limits.md", "API rate limits > Rate limits", "120 requests per minute"
)


PAGE = {"file": "api/rate-limits.md", "heading": "API rate limits", "release": "v4.2"}


def streamed(deltas: list[str], n_blocks: int) -> tuple[list[str], CitationFilter]:
    citations = CitationFilter(n_blocks)
    sent = [citations.feed(d) for d in deltas] + [citations.flush()]
    return sent, citations


def test_the_vocabulary_counts_blocks_and_weighs_rare_terms_more() -> None:
    vocabulary = Vocabulary.of(
        [
            Chunk("a.md", "Invoices", "Send an invoice. Invoice totals."),
            Chunk("b.md", "Invoices > Tax", "Tax rates on an invoice."),
            Chunk("c.md", "Time", "Start a timer."),
        ]
    )
    assert vocabulary.blocks == 3 and vocabulary.frequency["invoic"] == 2
    assert "tax" in vocabulary and "payrol" not in vocabulary
    assert vocabulary.idf("invoic") < vocabulary.idf("tax") < vocabulary.idf("payrol")


def test_markers_pointing_at_no_block_are_dropped_and_counted() -> None:
    text, citations = check_citations("Raise it in Settings [1] or [7].\nSources: [1], [7]", 2)
    assert text == "Raise it in Settings [1] or.\nSources: [1]"
    assert citations.cited == [1] and citations.dropped == [7, 7]


def test_a_sources_line_left_empty_is_removed() -> None:
    text, citations = check_citations("It is 120 per minute.\nSources: [5], [6]", 4)
    assert text == "It is 120 per minute."
    assert citations.cited == [] and citations.dropped == [5, 6]


def test_duplicate_sources_are_listed_once() -> None:
    text, _ = check_citations("Yes.\nSources: [2], [2], [1]", 3)
    assert text == "Yes.\nSources: [2], [1]"


def test_a_marker_split_across_deltas_never_reaches_the_client_when_bad() -> None:
    deltas = ["See the limits [", "1", "] and [", "9] too.\nSour", "ces: [9", "]"]
    sent, citations = streamed(deltas, 2)
    assert "".join(sent) == "See the limits [1] and too.\n"
    assert all("[9" not in part and "Sour" not in part for part in sent)
    assert citations.cited == [1] and citations.dropped == [9, 9]


def test_streaming_holds_back_only_a_possible_marker_or_the_sources_line() -> None:
    citations = CitationFilter(3)
    assert citations.feed("Open Settings") == "Open Settings"
    assert citations.feed(" [") == ""  # might become a marker
    assert citations.feed("optional] step") == " [optional] step"  # it did not
    assert citations.feed("\nSo") == "\n"  # might become the Sources line
    assert citations.feed("me more.") == "Some more."
    assert citations.flush() == ""


def test_whole_and_streamed_answers_are_fixed_the_same_way() -> None:
    answer = "Two steps [2].\nSteps:\n1. Open [4] Settings.\n2. Save.\nSources: [2], [4]"
    whole, _ = check_citations(answer, 3)
    sent, _ = streamed([answer[i : i + 3] for i in range(0, len(answer), 3)], 3)
    assert "".join(sent).strip() == whole
    assert whole == "Two steps [2].\nSteps:\n1. Open Settings.\n2. Save.\nSources: [2]"


def test_judge_flags_uncited_answers_and_dropped_markers() -> None:
    text, citations = check_citations("It is 120 per minute [8].", 4)
    grounding = judge("answered", None, citations, [], [], retrieval=True)
    assert not grounding.grounded and grounding.abstained is None
    assert grounding.warnings == (DROPPED, UNCITED) and grounding.dropped == 1


def test_judge_a_cited_answer_is_grounded() -> None:
    text, citations = check_citations("It is 120 per minute.\nSources: [1]", 4)
    grounding = judge("answered", None, citations, [], [PAGE], retrieval=True)
    assert grounding.grounded and grounding.cited == (1,) and grounding.warnings == ()
    assert grounding.to_dict() == {
        "outcome": "answered",
        "grounded": True,
        "abstained": None,
        "warnings": [],
        "unsupported": [],
        "suggestions": [],
        "cited": [1],
    }


def test_judge_a_suggestion_carries_its_pages_and_no_citation() -> None:
    text, citations = check_citations(fallback_sentence("v4.2"), 4)
    grounding = judge("suggested", "weak_evidence", citations, [], [PAGE], retrieval=True)
    assert grounding.abstained == "weak_evidence" and grounding.warnings == ()
    assert grounding.suggestions == (PAGE,) and not grounding.grounded
    declined = judge("declined", "off_topic", CitationFilter(4), [], [PAGE], retrieval=True)
    assert declined.suggestions == ()  # nothing relevant: no pages offered


def test_judge_flags_unsupported_literals() -> None:
    text, citations = check_citations("It costs $29 [1].", 4)
    grounding = judge("answered", None, citations, ["$29"], [], retrieval=True)
    assert grounding.unsupported == ("$29",) and UNSUPPORTED_LITERAL in grounding.warnings


def test_without_retrieval_no_citation_is_expected() -> None:
    text, citations = check_citations("Hello!", 0)
    assert judge("answered", None, citations, [], [], retrieval=False).warnings == ()
