"""Scores for one answer, and their aggregates per configuration."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tandem.answering.house_format import RULES, check_answer
from tandem.evaluation.harness import Outcome
from tandem.evaluation.qa import QAItem

_NON_WORD = re.compile(r"[^\w]+")  # underscores stay: setting names are single words
_CITATION = re.compile(r"\[(\d+)\]")
# the chat API's `outcome` values
ANSWERED, SUGGESTED, DECLINED = "answered", "suggested", "declined"
OUTCOMES = (ANSWERED, SUGGESTED, DECLINED)


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces; punctuation and markup become spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # `_emphasis_` loses its underscores; inner ones (PAPERLESS_OCR_MODE) stay
    words = (word.strip("_") for word in _NON_WORD.sub(" ", folded).split())
    return " ".join(word for word in words if word)


def contains_phrase(haystack: str, needle: str) -> bool:
    """Whole-word phrase match after normalising both sides ('300' does not match '3000')."""
    wanted = normalise(needle)
    return bool(wanted) and f" {wanted} " in f" {normalise(haystack)} "


def _same_file(source_file: str, expected: str) -> bool:
    got = source_file.replace("\\", "/").removeprefix("./").casefold()
    want = expected.replace("\\", "/").removeprefix("./").casefold()
    return got == want or got.endswith("/" + want)


def _heading_matches(source_heading: str, expected: str) -> bool:
    # the source heading is a path ("Page > Section > Sub"); the expected one a single heading
    without_anchors = re.sub(r"\{#[^}]*\}", "", source_heading)
    return contains_phrase(without_anchors, expected)


@dataclass
class AnswerScore:
    """Every figure measured on one Outcome. `None` means "does not apply"."""

    question: str
    config: str
    failed: bool
    error: str | None
    coverage: float
    terms_found: list[str]
    source_hit: bool | None
    compliant: bool
    rules: dict[str, bool]
    problems: list[str]
    citations: list[int]
    citation_valid: bool
    latency_ms: float | None
    server_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int
    answer: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    # the server's `outcome` (None: the request failed) and, when not answered, why
    # (`abstained`: "weak_evidence", "unknown_subject", "off_topic", "model_fallback", ...)
    outcome: str | None = None
    abstained: str | None = None
    unsupported: list[str] = field(default_factory=list)  # literals no given block holds
    suggestions: list[dict[str, Any]] = field(default_factory=list)  # pages offered instead
    suggestion_hit: bool | None = None  # a suggestion is the expected page (None: n/a)
    adapter: str | None = None
    release: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)  # the QA item it was scored against

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_matches(item: QAItem, file: str, heading: str) -> bool:
    """A retrieved block (`file`, `heading` path) is the source `item` expects."""
    if not item.file or not _same_file(file, item.file):
        return False
    return item.heading is None or _heading_matches(heading, item.heading)


def _page_hit(outcome: Outcome, pages: list[dict[str, Any]]) -> bool | None:
    """One of `pages` (sources or suggestions) is the expected one; None when that cannot apply."""
    item = outcome.item
    if not item.file or not outcome.config.retrieval:
        return None
    return any(
        source_matches(item, str(p.get("file") or ""), str(p.get("heading") or "")) for p in pages
    )


def _failed_score(outcome: Outcome) -> AnswerScore:
    applies = bool(outcome.item.file and outcome.config.retrieval)
    return AnswerScore(
        question=outcome.item.question,
        config=outcome.config.name,
        failed=True,
        error=outcome.error,
        coverage=0.0,
        terms_found=[],
        source_hit=False if applies else None,
        suggestion_hit=False if applies else None,
        compliant=False,
        rules=dict.fromkeys(RULES, False),
        problems=[f"request failed: {outcome.error}"],
        citations=[],
        citation_valid=False,
        latency_ms=None,
        server_ms=None,
        prompt_tokens=None,
        completion_tokens=None,
        attempts=outcome.attempts,
        answer="",
        expected=outcome.item.to_dict(),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _decision(outcome: Outcome, response: dict[str, Any]) -> dict[str, Any]:
    """What the server decided: the outcome, why not answered, flagged literals, pages offered."""
    pages = [p for p in response.get("suggestions") or [] if isinstance(p, dict)]
    return {
        "outcome": str(response.get("outcome") or ANSWERED),
        "abstained": str(response["abstained"]) if response.get("abstained") else None,
        "unsupported": [str(u) for u in response.get("unsupported") or []],
        "suggestions": [{k: p.get(k) for k in ("file", "heading", "release")} for p in pages],
        "suggestion_hit": _page_hit(outcome, pages),
    }


def score_outcome(outcome: Outcome) -> AnswerScore:
    """Coverage, source hit, house format, citations, latency and tokens of one answer."""
    if outcome.response is None:
        return _failed_score(outcome)
    response = outcome.response
    answer = str(response.get("answer") or "")
    sources = [s for s in response.get("sources") or [] if isinstance(s, dict)]
    release = (response.get("index") or {}).get("release")
    fmt = check_answer(answer, n_blocks=len(sources), release=release)
    terms = outcome.item.answer_terms
    found = [t for t in terms if contains_phrase(answer, t)]
    # a question the docs do not answer is covered by the house fallback sentence
    coverage = len(found) / len(terms) if terms else float(fmt.is_fallback)
    cited = [int(n) for n in _CITATION.findall(answer)]
    usage = response.get("usage") or {}
    return AnswerScore(
        question=outcome.item.question,
        config=outcome.config.name,
        failed=False,
        error=None,
        coverage=coverage,
        terms_found=found,
        source_hit=_page_hit(outcome, sources),
        compliant=fmt.compliant,
        rules=dict(fmt.rules),
        problems=list(fmt.problems),
        citations=cited,
        citation_valid=all(1 <= n <= len(sources) for n in cited),
        latency_ms=outcome.latency_ms,
        server_ms=_number((response.get("timings_ms") or {}).get("total")),
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        attempts=outcome.attempts,
        answer=answer,
        sources=[{k: s.get(k) for k in ("n", "file", "heading", "score")} for s in sources],
        **_decision(outcome, response),
        adapter=response.get("adapter"),
        release=release,
        expected=outcome.item.to_dict(),
    )


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass
class ConfigSummary:
    """Aggregates of one configuration. Failed questions count as misses in every rate."""

    config: str
    approach: str
    questions: int
    failed: int
    mean_coverage: float | None
    source_hit_rate: float | None
    source_hit_questions: int
    compliance_rate: float | None
    rule_rates: dict[str, float | None]
    citation_validity_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    server_p50_ms: float | None
    server_p95_ms: float | None
    mean_prompt_tokens: float | None
    mean_completion_tokens: float | None
    adapters: list[str]
    # outcome shares of the questions of each kind (answerable: `answer_terms` given); a
    # failed question is in none of them
    answerable_questions: int = 0
    answerable_answered_rate: float | None = None
    answerable_suggested_rate: float | None = None
    answerable_declined_rate: float | None = None
    unanswerable_questions: int = 0
    unanswerable_answered_rate: float | None = None
    unanswerable_suggested_rate: float | None = None
    unanswerable_declined_rate: float | None = None
    # unanswerable ones given no generated claim: suggested or declined
    unanswerable_withheld_rate: float | None = None
    # answerable ones with an expected page and retrieval on: answered citing that page among
    # the sources, or suggested offering it
    right_page_rate: float | None = None
    right_page_questions: int = 0
    # over the answered questions of both kinds only
    answered_questions: int = 0
    compliance_answered_rate: float | None = None
    unsupported_literal_rate: float | None = None  # answers with `unsupported` literals

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(config: str, approach: str, scores: Sequence[AnswerScore]) -> ConfigSummary:
    """Aggregate the scores of one configuration (latency and tokens over answered ones)."""
    completed = [s for s in scores if not s.failed]
    hits = [s.source_hit for s in scores if s.source_hit is not None]
    latencies = [s.latency_ms for s in completed if s.latency_ms is not None]
    server = [s.server_ms for s in completed if s.server_ms is not None]
    return ConfigSummary(
        config=config,
        approach=approach,
        questions=len(scores),
        failed=len(scores) - len(completed),
        mean_coverage=_mean([s.coverage for s in scores]),
        source_hit_rate=_rate(hits),
        source_hit_questions=len(hits),
        compliance_rate=_rate([s.compliant for s in scores]),
        rule_rates={rule: _rate([s.rules.get(rule, False) for s in scores]) for rule in RULES},
        citation_validity_rate=_rate([s.citation_valid for s in scores]),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        server_p50_ms=percentile(server, 50),
        server_p95_ms=percentile(server, 95),
        mean_prompt_tokens=_mean(
            [s.prompt_tokens for s in completed if s.prompt_tokens is not None]
        ),
        mean_completion_tokens=_mean(
            [s.completion_tokens for s in completed if s.completion_tokens is not None]
        ),
        adapters=sorted({s.adapter for s in completed if s.adapter}),
        **_outcome_figures(scores),
    )


def _answerable(score: AnswerScore) -> bool:
    return bool(score.expected.get("answer_terms"))


def _shares(kind: str, scores: Sequence[AnswerScore]) -> dict[str, Any]:
    """`<kind>_questions` and `<kind>_<outcome>_rate` for each outcome."""
    figures: dict[str, Any] = {f"{kind}_questions": len(scores)}
    for outcome in OUTCOMES:
        figures[f"{kind}_{outcome}_rate"] = _rate([s.outcome == outcome for s in scores])
    return figures


def _right_page(score: AnswerScore) -> bool | None:
    """Answered with the expected page among the sources, or suggested offering it."""
    if score.source_hit is None:
        return None  # no expected page, or no retrieval
    if score.outcome == ANSWERED:
        return score.source_hit
    return score.outcome == SUGGESTED and bool(score.suggestion_hit)


def _outcome_figures(scores: Sequence[AnswerScore]) -> dict[str, Any]:
    """Outcome shares per kind of question, the right-page share, figures over answered ones."""
    answerable = [s for s in scores if _answerable(s)]
    unanswerable = [s for s in scores if not _answerable(s)]
    pages = [hit for s in answerable if (hit := _right_page(s)) is not None]
    answered = [s for s in scores if s.outcome == ANSWERED]
    return {
        **_shares("answerable", answerable),
        **_shares("unanswerable", unanswerable),
        "unanswerable_withheld_rate": _rate(
            [s.outcome in (SUGGESTED, DECLINED) for s in unanswerable]
        ),
        "right_page_rate": _rate(pages),
        "right_page_questions": len(pages),
        "answered_questions": len(answered),
        "compliance_answered_rate": _rate([s.compliant for s in answered]),
        "unsupported_literal_rate": _rate([bool(s.unsupported) for s in answered]),
    }
