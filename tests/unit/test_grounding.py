"""The relevance gate's signals and the citation check, streamed and whole."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tandem.documents import Chunk, ScoredChunk
from tandem.grounding import (
    DROPPED,
    MODEL_FALLBACK,
    NOT_RELEVANT,
    UNCITED,
    CitationFilter,
    Vocabulary,
    check_citations,
    declines,
    judge,
    names,
    relevance,
)
from tandem.rag.prompt import fallback_sentence
from tandem.settings import RetrievalSettings

RATE_LIMITS = Chunk(
    "api/rate-limits.md", "API rate limits > Rate limits", "120 requests per minute"
)


def scored(similarity: float, chunk: Chunk = RATE_LIMITS) -> ScoredChunk:
    return ScoredChunk(chunk=chunk, score=0.5, similarity=similarity)


def streamed(deltas: list[str], n_blocks: int) -> tuple[list[str], CitationFilter]:
    citations = CitationFilter(n_blocks)
    sent = [citations.feed(d) for d in deltas] + [citations.flush()]
    return sent, citations


def test_relevance_reads_the_best_similarity_and_the_shared_content_terms() -> None:
    signals = relevance("What is the API rate limit?", [scored(0.2), scored(0.7)])
    assert signals.similarity == pytest.approx(0.7)
    assert signals.overlap == 1.0  # api, rate, limit: all in the heading path or text
    off_topic = relevance("What is the capital of France?", [scored(0.1)])
    assert off_topic.overlap == 0.0


def test_relevance_of_nothing_retrieved_or_a_question_without_content_terms_is_zero() -> None:
    assert relevance("rate limit", []).similarity == 0.0
    assert relevance("how are you?", [scored(0.6)]).overlap == 0.0  # only stopwords


def test_names_are_capitalised_inside_a_sentence_or_have_inner_capitals() -> None:
    question = "Can Kestrel sync with Google Calendar? GPS too. And SharePoint?\nWhat about I/O"
    assert names(question) == ["Kestrel", "Google", "Calendar", "GPS", "SharePoint"]


def test_a_name_no_retrieved_block_mentions_is_unknown() -> None:
    signals = relevance("How do I connect the API to Jira?", [scored(0.7)])
    assert signals.unknown_names == ("Jira",)
    assert relevance("Is the API rate limit per token?", [scored(0.7)]).unknown_names == ()


def test_a_name_the_release_mentions_elsewhere_is_known() -> None:
    vocabulary = Vocabulary.of([RATE_LIMITS, Chunk("upload.md", "Upload", "A PDF or a PNG.")])
    elsewhere = relevance("Does the API accept a PDF?", [scored(0.7)], vocabulary)
    assert elsewhere.unknown_names == () and elsewhere.unseen == ("accept",)


def test_a_setting_name_is_unknown_unless_the_release_has_the_whole_identifier() -> None:
    """Every word of PAPERLESS_AUTO_TRANSLATE may be in the release; the setting is not."""
    vocabulary = Vocabulary.of(
        [
            Chunk("config.md", "PAPERLESS_OCR_LANGUAGE", "Set PAPERLESS_OCR_LANGUAGE."),
            Chunk("usage.md", "Auto", "Paperless can auto-tag and translate nothing."),
        ]
    )
    made_up = relevance("What does PAPERLESS_AUTO_TRANSLATE do?", [scored(0.7)], vocabulary)
    assert made_up.unknown_names == ("PAPERLESS_AUTO_TRANSLATE",)
    real = relevance("What does PAPERLESS_OCR_LANGUAGE do?", [scored(0.7)], vocabulary)
    assert real.unknown_names == ()


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


def test_coverage_weighs_the_shared_terms_by_their_specificity() -> None:
    vocabulary = Vocabulary.of([RATE_LIMITS, Chunk("x.md", "API", "API tokens and the API.")])
    signals = relevance("API rate limit in dark mode", [scored(0.6)], vocabulary)
    assert signals.overlap == pytest.approx(3 / 5)
    assert signals.unseen == ("dark", "mode")  # the release never uses them: they weigh most
    assert signals.coverage < signals.overlap


def test_the_gate_rule_declines_below_either_threshold_or_on_an_unknown_name() -> None:
    gate = RetrievalSettings(min_similarity=0.4, min_term_overlap=0.5)
    assert not declines(relevance("API rate limit", [scored(0.6)]), gate)
    assert declines(relevance("API rate limit", [scored(0.3)]), gate)
    assert declines(relevance("capital of France", [scored(0.9)]), gate)
    assert declines(relevance("API rate limit for Jira", [scored(0.6)]), gate)
    lenient = gate.model_copy(update={"decline_unknown_names": False})
    assert not declines(relevance("API rate limit for Jira", [scored(0.6)]), lenient)


def test_the_gate_rule_declines_on_low_coverage_or_too_many_unseen_terms() -> None:
    vocabulary = Vocabulary.of([RATE_LIMITS, Chunk("x.md", "API", "API tokens and the API.")])
    dark_mode = relevance("API rate limit in dark mode", [scored(0.6)], vocabulary)
    gate = RetrievalSettings(
        min_similarity=0.4, min_term_overlap=0.5, min_coverage=0.0, max_unseen_terms=None
    )
    assert not declines(dark_mode, gate)
    assert declines(dark_mode, gate.model_copy(update={"min_coverage": 0.5}))
    assert declines(dark_mode, gate.model_copy(update={"max_unseen_terms": 1}))
    assert not declines(dark_mode, gate.model_copy(update={"max_unseen_terms": 2}))


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


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_judge_flags_uncited_answers_and_counts_outcomes() -> None:
    before = _counter("tandem_answers_total", outcome="uncited")
    dropped_before = _counter("tandem_citations_dropped_total")
    text, citations = check_citations("It is 120 per minute [8].", 4)
    grounding = judge(text, citations, retrieval=True, abstained=None)
    assert not grounding.grounded and grounding.abstained is None
    assert grounding.warnings == (DROPPED, UNCITED) and grounding.dropped == 1
    assert _counter("tandem_answers_total", outcome="uncited") == before + 1
    assert _counter("tandem_citations_dropped_total") == dropped_before + 1


def test_judge_a_cited_answer_is_grounded() -> None:
    text, citations = check_citations("It is 120 per minute.\nSources: [1]", 4)
    grounding = judge(text, citations, retrieval=True, abstained=None)
    assert grounding.grounded and grounding.cited == (1,) and grounding.warnings == ()
    assert grounding.to_dict() == {
        "grounded": True,
        "abstained": None,
        "warnings": [],
        "cited": [1],
    }


def test_judge_the_fallback_sentence_is_an_abstention_not_an_uncited_answer() -> None:
    text, citations = check_citations(fallback_sentence("v4.2"), 4)
    grounding = judge(text, citations, retrieval=True, abstained=None)
    assert grounding.abstained == MODEL_FALLBACK and grounding.warnings == ()
    gate = judge(text, CitationFilter(4), retrieval=True, abstained=NOT_RELEVANT)
    assert gate.abstained == NOT_RELEVANT and not gate.grounded


def test_without_retrieval_no_citation_is_expected() -> None:
    text, citations = check_citations("Hello!", 0)
    assert judge(text, citations, retrieval=False, abstained=None).warnings == ()
