"""Scores of hand-made answers and their aggregates."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.evaluation.harness import CONFIGURATIONS, Outcome
from tandem.evaluation.qa import QAItem
from tandem.evaluation.scores import (
    AnswerScore,
    contains_phrase,
    normalise,
    percentile,
    score_outcome,
    summarise,
)

OCR = QAItem(
    "How do I set the OCR language?",
    ("PAPERLESS_OCR_LANGUAGE", "deu"),
    file="configuration.md",
    heading="PAPERLESS_OCR_LANGUAGE",
)
NOT_IN_DOCS = QAItem("Does it run on a toaster?", ())
SOURCE = {
    "n": 1,
    "file": "configuration.md",
    "heading": "Configuration > OCR settings > `PAPERLESS_OCR_LANGUAGE=<lang>`",
}
RIGHT_PAGE = {"file": SOURCE["file"], "heading": SOURCE["heading"], "release": "v3.0.5"}
WRONG_PAGE = {**RIGHT_PAGE, "heading": "Configuration > OCR settings > PAPERLESS_OCR_MODE"}
FALLBACK = "I couldn't find this in the documentation for release v3.0.5."


def _outcome(
    item: QAItem,
    config: str,
    answer: str,
    sources: list[dict[str, Any]] | None = None,
    latency: float = 100.0,
    **decision: Any,
) -> Outcome:
    """A response as the chat API gives it; `decision` overrides outcome, abstained, ..."""
    response = {
        "answer": answer,
        "outcome": "answered",
        "abstained": None,
        "unsupported": [],
        "suggestions": [],
        **decision,
        "sources": sources or [],
        "adapter": "support@v3",
        "index": {"release": "v3.0.5", "collection": "c"},
        "usage": {"prompt_tokens": 300, "completion_tokens": 25},
        "timings_ms": {"retrieval": 4, "generation": 50, "total": 60},
    }
    return Outcome(item, CONFIGURATIONS[config], response, None, latency, 1)


def test_normalise_and_whole_word_matching() -> None:
    assert normalise("  `PAPERLESS_OCR_LANGUAGE`=deu,\n eng ") == "paperless_ocr_language deu eng"
    assert contains_phrase("Set it to **300** dpi.", "300")
    assert not contains_phrase("Set it to 3000 dpi.", "300")
    assert contains_phrase("run document_exporter  --no-archive", "--no-archive")
    assert contains_phrase("Use the `Steps:` list", "steps")
    assert contains_phrase("FAQ > _Are duplicates rejected?_", "Are duplicates rejected?")


def test_a_good_hybrid_answer_scores_fully() -> None:
    answer = "Set `PAPERLESS_OCR_LANGUAGE` to `deu` for German.\nSources: [1]"
    score = score_outcome(_outcome(OCR, "hybrid", answer, [SOURCE]))
    assert score.coverage == 1.0 and score.terms_found == ["PAPERLESS_OCR_LANGUAGE", "deu"]
    assert score.source_hit is True
    assert score.compliant and score.citation_valid and score.citations == [1]
    assert (score.prompt_tokens, score.completion_tokens, score.server_ms) == (300, 25, 60.0)


def test_partial_coverage_wrong_heading_and_bad_citation() -> None:
    other = {**SOURCE, "heading": "Configuration > OCR settings > PAPERLESS_OCR_MODE"}
    answer = "Set PAPERLESS_OCR_LANGUAGE in the environment.\nSources: [1], [3]"
    score = score_outcome(_outcome(OCR, "rag", answer, [other]))
    assert score.coverage == 0.5
    assert score.source_hit is False
    assert score.citation_valid is False and score.citations == [1, 3]
    assert not score.compliant and not score.rules["sources_line"]


def test_source_hit_does_not_apply_without_retrieval_or_expected_file() -> None:
    answer = "Set PAPERLESS_OCR_LANGUAGE to deu."
    assert score_outcome(_outcome(OCR, "adapter", answer)).source_hit is None
    assert score_outcome(_outcome(NOT_IN_DOCS, "hybrid", answer)).source_hit is None


def test_any_citation_without_sources_is_invalid() -> None:
    score = score_outcome(_outcome(OCR, "base", "It is PAPERLESS_OCR_LANGUAGE [2]."))
    assert score.citation_valid is False and not score.compliant


def test_unanswerable_question_is_covered_by_the_fallback() -> None:
    fallback = "I couldn't find this in the documentation for release v3.0.5."
    good = score_outcome(_outcome(NOT_IN_DOCS, "hybrid", fallback))
    assert good.coverage == 1.0 and good.compliant
    invented = score_outcome(_outcome(NOT_IN_DOCS, "hybrid", "Yes, it runs on toasters."))
    assert invented.coverage == 0.0


def test_format_rules_are_reported_one_by_one() -> None:
    answer = (
        "As an AI, I can help. Here is how. And more. Even more.\n"
        "1. Open settings\n2. Save\nSources: [1]"
    )
    score = score_outcome(_outcome(OCR, "hybrid", answer, [SOURCE]))
    assert score.rules["tone_length"] is False
    assert score.rules["steps_list"] is False
    assert score.rules["direct_opening"] is False
    assert score.rules["sources_line"] is True


def test_failed_outcome_counts_as_a_miss() -> None:
    failed = Outcome(OCR, CONFIGURATIONS["hybrid"], None, "HTTP 503", None, 3)
    score = score_outcome(failed)
    assert score.failed and score.coverage == 0 and score.source_hit is False
    assert not score.compliant and not score.citation_valid


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(v) for v in range(1, 101)], 95) == pytest.approx(95.05)


def test_summary_rates_include_failures_and_latency_excludes_them() -> None:
    good = "Set PAPERLESS_OCR_LANGUAGE to deu.\nSources: [1]"
    scores = [
        score_outcome(_outcome(OCR, "hybrid", good, [SOURCE], latency=100.0)),
        score_outcome(_outcome(NOT_IN_DOCS, "hybrid", "Maybe.", latency=300.0)),
        score_outcome(Outcome(OCR, CONFIGURATIONS["hybrid"], None, "boom", None, 3)),
    ]
    summary = summarise("hybrid", "Hybrid", scores)
    assert summary.questions == 3 and summary.failed == 1
    assert summary.mean_coverage == pytest.approx(1 / 3)
    assert summary.source_hit_rate == 0.5 and summary.source_hit_questions == 2
    assert summary.compliance_rate == pytest.approx(2 / 3)
    assert summary.rule_rates["sources_line"] == pytest.approx(2 / 3)
    assert summary.citation_validity_rate == pytest.approx(2 / 3)
    assert summary.latency_p50_ms == 200.0 and summary.latency_p95_ms == pytest.approx(290.0)
    assert summary.mean_prompt_tokens == 300 and summary.adapters == ["support@v3"]


def test_score_records_outcome_unsupported_literals_and_suggested_pages() -> None:
    suggested = _outcome(
        OCR,
        "hybrid",
        FALLBACK,
        [SOURCE],
        outcome="suggested",
        abstained="weak_evidence",
        suggestions=[WRONG_PAGE, RIGHT_PAGE],
    )
    score = score_outcome(suggested)
    assert (score.outcome, score.abstained) == ("suggested", "weak_evidence")
    assert score.suggestions == [WRONG_PAGE, RIGHT_PAGE] and score.suggestion_hit is True
    invented = _outcome(OCR, "adapter", "It costs $9 since 1.7.", unsupported=["$9", "1.7"])
    score = score_outcome(invented)
    assert score.outcome == "answered" and score.unsupported == ["$9", "1.7"]
    assert score.suggestion_hit is None  # no retrieval: no page could be offered
    failed = score_outcome(Outcome(OCR, CONFIGURATIONS["hybrid"], None, "boom", None, 3))
    assert failed.outcome is None and failed.suggestion_hit is False


def _outcome_mix() -> list[AnswerScore]:
    """Every outcome on both kinds of question, under hybrid."""
    good = "Set PAPERLESS_OCR_LANGUAGE=deu [1].\n\nSources: [1]"
    outcomes = [
        # the docs do not answer these three
        _outcome(NOT_IN_DOCS, "hybrid", FALLBACK, outcome="declined", abstained="off_topic"),
        _outcome(
            QAItem("Does it fly?", ()),
            "hybrid",
            FALLBACK,
            [SOURCE],
            outcome="suggested",
            abstained="model_fallback",
            suggestions=[WRONG_PAGE],
        ),
        _outcome(QAItem("Price?", ()), "hybrid", "It costs $9.", unsupported=["$9"]),
        # they answer these six
        _outcome(OCR, "hybrid", good, [SOURCE]),
        _outcome(OCR, "hybrid", good, [WRONG_PAGE], unsupported=["deu"]),
        _outcome(OCR, "hybrid", FALLBACK, outcome="suggested", suggestions=[RIGHT_PAGE]),
        _outcome(OCR, "hybrid", FALLBACK, outcome="suggested", suggestions=[WRONG_PAGE]),
        _outcome(OCR, "hybrid", FALLBACK, outcome="declined", abstained="off_topic"),
        Outcome(OCR, CONFIGURATIONS["hybrid"], None, "boom", None, 3),
    ]
    return [score_outcome(o) for o in outcomes]


def test_summary_shares_outcomes_per_kind_of_question() -> None:
    summary = summarise("hybrid", "Hybrid", _outcome_mix())
    assert summary.unanswerable_questions == 3 and summary.answerable_questions == 6
    assert summary.unanswerable_answered_rate == pytest.approx(1 / 3)
    assert summary.unanswerable_suggested_rate == pytest.approx(1 / 3)
    assert summary.unanswerable_declined_rate == pytest.approx(1 / 3)
    assert summary.unanswerable_withheld_rate == pytest.approx(2 / 3)
    # the failed question is in none of the shares
    assert summary.answerable_answered_rate == pytest.approx(2 / 6)
    assert summary.answerable_suggested_rate == pytest.approx(2 / 6)
    assert summary.answerable_declined_rate == pytest.approx(1 / 6)


def test_right_page_counts_cited_sources_and_suggested_pages() -> None:
    summary = summarise("hybrid", "Hybrid", _outcome_mix())
    # answered citing it, suggested offering it; not: wrong source, wrong page, declined, failed
    assert summary.right_page_questions == 6
    assert summary.right_page_rate == pytest.approx(2 / 6)
    without_retrieval = summarise(
        "adapter", "Adapter", [score_outcome(_outcome(OCR, "adapter", "x"))]
    )
    assert without_retrieval.right_page_rate is None and without_retrieval.right_page_questions == 0


def test_unsupported_literals_and_compliance_are_also_over_answered_questions() -> None:
    scores = _outcome_mix()
    summary = summarise("hybrid", "Hybrid", scores)
    assert summary.answered_questions == 3
    assert summary.unsupported_literal_rate == pytest.approx(2 / 3)
    answered = [s for s in scores if s.outcome == "answered"]
    assert [s.compliant for s in answered] == [True, True, True]
    assert summary.compliance_answered_rate == 1.0
    # over all questions the fallbacks count too (compliant) and the failure does not
    assert summary.compliance_rate == pytest.approx(8 / 9)
