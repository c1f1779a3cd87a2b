"""Scores for one answer, and their aggregates per configuration."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tandem.answer_format import RULES, check_answer
from tandem.evaluation.harness import Outcome
from tandem.evaluation.qa import QAItem

_NON_WORD = re.compile(r"[^\w]+")  # underscores stay: setting names are single words
_CITATION = re.compile(r"\[(\d+)\]")


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
    # the answer is the house fallback sentence; `abstained` says who declined: the relevance
    # gate ("not_relevant", no vLLM call) or the model ("model_fallback")
    declined: bool = False
    abstained: str | None = None
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


def _source_hit(outcome: Outcome, sources: list[dict[str, Any]]) -> bool | None:
    item = outcome.item
    if not item.file or not outcome.config.retrieval:
        return None
    return any(
        source_matches(item, str(s.get("file") or ""), str(s.get("heading") or "")) for s in sources
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
    prompt = _number(usage.get("prompt_tokens"))
    completion = _number(usage.get("completion_tokens"))
    return AnswerScore(
        question=outcome.item.question,
        config=outcome.config.name,
        failed=False,
        error=None,
        coverage=coverage,
        terms_found=found,
        source_hit=_source_hit(outcome, sources),
        compliant=fmt.compliant,
        rules=dict(fmt.rules),
        problems=list(fmt.problems),
        citations=cited,
        citation_valid=all(1 <= n <= len(sources) for n in cited),
        latency_ms=outcome.latency_ms,
        server_ms=_number((response.get("timings_ms") or {}).get("total")),
        prompt_tokens=int(prompt) if prompt is not None else None,
        completion_tokens=int(completion) if completion is not None else None,
        attempts=outcome.attempts,
        answer=answer,
        sources=[{k: s.get(k) for k in ("n", "file", "heading", "score")} for s in sources],
        declined=fmt.is_fallback,
        abstained=str(response["abstained"]) if response.get("abstained") else None,
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
    # grounded or silent: unanswerable questions answered with the fallback sentence, and
    # answerable ones wrongly declined; `gate_declined`: the unanswerable ones the gate declined
    unanswerable_questions: int = 0
    declined_unanswerable_rate: float | None = None
    declined_answerable_rate: float | None = None
    gate_declined: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(config: str, approach: str, scores: Sequence[AnswerScore]) -> ConfigSummary:
    """Aggregate the scores of one configuration (latency and tokens over answered ones)."""
    answered = [s for s in scores if not s.failed]
    hits = [s.source_hit for s in scores if s.source_hit is not None]
    latencies = [s.latency_ms for s in answered if s.latency_ms is not None]
    server = [s.server_ms for s in answered if s.server_ms is not None]
    return ConfigSummary(
        config=config,
        approach=approach,
        questions=len(scores),
        failed=len(scores) - len(answered),
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
            [s.prompt_tokens for s in answered if s.prompt_tokens is not None]
        ),
        mean_completion_tokens=_mean(
            [s.completion_tokens for s in answered if s.completion_tokens is not None]
        ),
        adapters=sorted({s.adapter for s in answered if s.adapter}),
        unanswerable_questions=sum(not _answerable(s) for s in scores),
        declined_unanswerable_rate=_rate([s.declined for s in scores if not _answerable(s)]),
        declined_answerable_rate=_rate([s.declined for s in scores if _answerable(s)]),
        gate_declined=sum(s.abstained == "not_relevant" for s in scores if not _answerable(s)),
    )


def _answerable(score: AnswerScore) -> bool:
    return bool(score.expected.get("answer_terms"))
