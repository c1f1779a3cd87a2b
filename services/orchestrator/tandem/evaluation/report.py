"""report.md, report.json and PNG plots of an evaluation run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.answering.house_format import RULES
from tandem.evaluation.result import EvalResult
from tandem.evaluation.scores import OUTCOMES, AnswerScore, ConfigSummary


@dataclass(frozen=True)
class Metric:
    """A ranked figure: where it sits on a summary, and what being best at it is good for."""

    key: str
    label: str
    use: str
    quality: bool  # answer quality (higher is better) rather than a cost (lower is better)

    @property
    def best_phrase(self) -> str:
        return f"{'highest' if self.quality else 'lowest'} {self.label}"


# quality before cost: ties in "key strength" go to the earlier metric
METRICS = (
    Metric("mean_coverage", "answer coverage", "questions that need the right facts", True),
    Metric("source_hit_rate", "source hit rate", "answers checked against the docs page", True),
    Metric("right_page_rate", "right-page share", "pointing customers at the right page", True),
    Metric("compliance_rate", "format compliance", "a consistent house answer format", True),
    Metric("citation_validity_rate", "citation validity", "citations that must hold up", True),
    Metric("unanswerable_withheld_rate", "abstention", "questions the docs do not answer", True),
    Metric("mean_prompt_tokens", "prompt tokens", "the cheapest requests", False),
    Metric("latency_p95_ms", "latency p95", "latency-sensitive chat", False),
    Metric("mean_completion_tokens", "completion tokens", "short, cheap replies", False),
)


def _value(summary: ConfigSummary, metric: Metric) -> float | None:
    value = getattr(summary, metric.key)
    return float(value) if value is not None else None


def _fmt(metric: Metric, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric.key.endswith("_rate") or metric.key == "mean_coverage":
        return f"{value:.0%}"
    return f"{value:,.0f}" + (" ms" if metric.key.endswith("_ms") else "")


def _ranks(summaries: Sequence[ConfigSummary], metric: Metric) -> dict[str, int] | None:
    """Dense rank (1 = best) per configuration, or None when the metric does not separate them."""
    values = {s.config: _value(s, metric) for s in summaries}
    known = {k: v for k, v in values.items() if v is not None}
    if len(known) < 2 or len(set(known.values())) < 2:
        return None
    ordered = sorted(set(known.values()), reverse=metric.quality)
    return {k: ordered.index(v) + 1 for k, v in known.items()}


def key_strength(summary: ConfigSummary, summaries: Sequence[ConfigSummary]) -> Metric | None:
    """The metric where this configuration ranks best (alone if it can; quality before cost)."""
    ranked = [(m, r) for m in METRICS if (r := _ranks(summaries, m)) and summary.config in r]

    def order(pair: tuple[Metric, dict[str, int]]) -> tuple[int, int]:
        metric, ranks = pair
        mine = ranks[summary.config]
        shared = sum(1 for rank in ranks.values() if rank == mine)
        return mine, shared  # sole best before tied best; METRICS order breaks the rest

    return min(ranked, key=order)[0] if ranked else None


def best_for(summary: ConfigSummary, summaries: Sequence[ConfigSummary]) -> str:
    """A short sentence from the numbers: what it is best at, and its weakest quality figure."""
    if len(summaries) < 2:
        return "Only configuration evaluated; nothing to compare with."
    if summary.failed == summary.questions:
        return "Nothing: every question failed."
    strength = key_strength(summary, summaries)
    ranks = _ranks(summaries, strength) if strength else None
    if strength is None or ranks is None:
        return "No measured advantage over the other configurations."
    lead = "Best" if ranks[summary.config] == 1 else "Runner-up"
    sentence = f"{lead} for {strength.use} ({_fmt(strength, _value(summary, strength))})"
    worst = [
        m
        for m in METRICS
        if m.quality
        and m is not strength
        and (r := _ranks(summaries, m))
        and summary.config in r
        and r[summary.config] == max(r.values())
    ]
    if worst:
        sentence += f"; weakest on {worst[0].label} ({_fmt(worst[0], _value(summary, worst[0]))})"
    return sentence + "."


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.0f}{unit}"


def _counted(value: float | None, n: int) -> str:
    """A share and the number of questions it is over."""
    return "n/a" if value is None else f"{value:.0%} (n={n})"


def outcome_shares(summary: ConfigSummary, kind: str) -> str:
    """'answered / suggested / declined (n=…)' for the answerable or unanswerable questions."""
    n = getattr(summary, f"{kind}_questions")
    if not n:
        return "n/a"
    rates = [getattr(summary, f"{kind}_{outcome}_rate") for outcome in OUTCOMES]
    return " / ".join(_pct(rate) for rate in rates) + f" (n={n})"


def _row(s: ConfigSummary, summaries: Sequence[ConfigSummary]) -> str:
    strength = key_strength(s, summaries)
    strength_text = (
        f"{strength.best_phrase} ({_fmt(strength, _value(s, strength))})" if strength else "—"
    )
    cells = [
        f"**{s.config}**: {s.approach}",
        strength_text,
        _pct(s.mean_coverage),
        _counted(s.source_hit_rate, s.source_hit_questions),
        _counted(s.right_page_rate, s.right_page_questions),
        f"{_pct(s.compliance_rate)} / {_pct(s.compliance_answered_rate)}",
        _pct(s.citation_validity_rate),
        outcome_shares(s, "answerable"),
        outcome_shares(s, "unanswerable"),
        _counted(s.unsupported_literal_rate, s.answered_questions),
        _num(s.mean_prompt_tokens),
        _num(s.mean_completion_tokens),
        f"{_num(s.latency_p50_ms)} / {_num(s.latency_p95_ms, ' ms')}",
        f"{s.failed}/{s.questions}",
        _cell(best_for(s, summaries)),
    ]
    return "| " + " | ".join(cells) + " |"


def comparison_table(summaries: Sequence[ConfigSummary]) -> list[str]:
    """The RAG-vs-fine-tuning table, every cell measured."""
    return [
        "| Configuration (approach) | Key strength | Answer coverage | Source hit rate "
        "| Right page | Format compliance (all / answered) | Citation validity "
        "| Answerable: answered / suggested / declined "
        "| Unanswerable: answered / suggested / declined | Unsupported literals (answered) "
        "| Prompt tokens | Completion tokens | Latency p50 / p95 | Failures | Best for |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(_row(s, summaries) for s in summaries),
    ]


def _rules_table(summaries: Sequence[ConfigSummary]) -> list[str]:
    lines = [
        "| Rule | " + " | ".join(s.config for s in summaries) + " |",
        "|---|" + "---:|" * len(summaries),
    ]
    for rule in RULES:
        lines.append(
            f"| {rule} | " + " | ".join(_pct(s.rule_rates.get(rule)) for s in summaries) + " |"
        )
    return lines


def _details_table(result: EvalResult) -> list[str]:
    lines = [
        "| Question | Config | Outcome | Coverage | Compliant | Answer (first 200 chars) |",
        "|---|---|---|---:|:---:|---|",
    ]
    for s in result.scores:
        shown = f"FAILED: {s.error}" if s.failed else s.answer[:200]
        lines.append(
            f"| {_cell(s.question)} | {s.config} | {_cell(_outcome_text(s))} | {s.coverage:.0%} "
            f"| {'yes' if s.compliant else 'no'} | {_cell(shown or '(empty)')} |"
        )
    return lines


def _outcome_text(score: AnswerScore) -> str:
    """'suggested (weak_evidence): 2 pages', 'answered; unsupported: 42, FOO_BAR'."""
    if score.outcome is None:
        return "failed"
    text = score.outcome + (f" ({score.abstained})" if score.abstained else "")
    if score.suggestions:
        text += f": {len(score.suggestions)} page{'s' * (len(score.suggestions) > 1)}"
    if score.unsupported:
        text += "; unsupported: " + ", ".join(score.unsupported)
    return text


def _header(result: EvalResult) -> list[str]:
    adapters = sorted({a for s in result.summaries.values() for a in s.adapters})
    evaluated = result.items_total - len(result.skipped)
    lines = [
        "# Tandem evaluation report",
        "",
        f"- Server: `{result.url}`; docs release served: `{result.serving_release or 'unknown'}`;"
        f" adapter: {', '.join(f'`{a}`' for a in adapters) or 'n/a'}",
        f"- QA file: `{result.qa_path}`: {evaluated} of {result.items_total} questions evaluated"
        + (
            f" ({len(result.skipped)} skipped: written for another release)"
            if result.skipped
            else ""
        ),
        f"- Run: {result.started_at}, {result.duration_s:.0f} s, concurrency {result.concurrency}",
        "",
    ]
    return lines


_DEFINITIONS = (
    "Coverage: share of a question's `answer_terms` found in the answer (case-insensitive, "
    "whole words; for questions the docs do not answer: 1 when the answer is the house "
    "fallback). Source hit: the expected file (and heading) is among the sources, over "
    "questions with an expected file and retrieval on. Compliance: all house-format rules "
    "pass; over all questions / over the questions answered. Citation validity: every `[n]` "
    "in the answer names a block that was given. Answered / suggested / declined: the "
    "server's outcome, as shares of the questions the docs answer and of those they do not "
    "(suggested: the house sentence and the closest pages, decided before generation, or "
    "after it when the model wrote that sentence itself or no claim survived the literal "
    "check; declined: off-topic, no pages). Right "
    "page: answerable questions with an expected page and retrieval on that were answered "
    "with that page among the sources, or suggested with it among the pages. Unsupported "
    "literals: answered answers holding a number, setting name, URL or quoted label that no "
    "given block holds (flagged by the server, which removes the sentences holding them when "
    "retrieval is on, unless `answering.remove_unsupported` is off). Failed questions count "
    "as misses in every rate; latency and tokens are over completed requests "
    "(client-measured latency of the last try)."
)


def render_markdown(result: EvalResult) -> str:
    """The whole report.md text."""
    summaries = list(result.summaries.values())
    lines = _header(result) + ["## Comparison", ""] + comparison_table(summaries)
    lines += [
        "",
        _DEFINITIONS,
        "",
        "![metrics](metrics.png) ![latency](latency.png) ![tokens](tokens.png)",
        "",
    ]
    if result.gate is not None:
        verdict = "**passed**" if not result.violations else "**failed**"
        lines += (
            [
                "## Gate (hybrid)",
                "",
                f"Thresholds: `{json.dumps(result.gate.to_dict())}` — {verdict}",
                "",
            ]
            + [f"- {v}" for v in result.violations]
            + [""]
        )
    lines += ["## Compliance per house rule", ""] + _rules_table(summaries)
    lines += ["", "## Per-question details", ""] + _details_table(result)
    return "\n".join(lines) + "\n"


def report_json(result: EvalResult) -> dict[str, Any]:
    """Everything measured, including each question's answer and scores."""
    return {
        "url": result.url,
        "qa_file": str(result.qa_path),
        "serving_release": result.serving_release,
        "started_at": result.started_at,
        "duration_s": result.duration_s,
        "concurrency": result.concurrency,
        "configs": list(result.summaries),
        "questions_total": result.items_total,
        "skipped_other_release": result.skipped,
        "summaries": {k: s.to_dict() for k, s in result.summaries.items()},
        "gate": None
        if result.gate is None
        else {
            "thresholds": result.gate.to_dict(),
            "violations": result.violations,
            "passed": not result.violations,
        },
        "questions": [s.to_dict() for s in result.scores],
    }


# file, title, y label, percent scale, {legend: ConfigSummary field}
_PLOTS: tuple[tuple[str, str, str, bool, dict[str, str]], ...] = (
    ("metrics.png", "Quality per configuration", "% of questions", True,
     {"coverage": "mean_coverage", "source hit": "source_hit_rate",
      "right page": "right_page_rate", "compliance": "compliance_rate",
      "citation validity": "citation_validity_rate",
      "unanswerable withheld": "unanswerable_withheld_rate"}),
    ("latency.png", "Latency per configuration", "ms", False,
     {"p50": "latency_p50_ms", "p95": "latency_p95_ms"}),
    ("tokens.png", "Mean tokens per answer", "tokens", False,
     {"prompt": "mean_prompt_tokens", "completion": "mean_completion_tokens"}),
)  # fmt: skip


def write_plots(summaries: Sequence[ConfigSummary], out_dir: Path) -> list[Path]:
    """metrics.png, latency.png and tokens.png: grouped bars per configuration (n/a as 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, title, ylabel, percent, fields in _PLOTS:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(summaries) * len(fields)), 4.0))
        width = 0.8 / len(fields)
        for i, (label, key) in enumerate(fields.items()):
            xs = [g + (i - (len(fields) - 1) / 2) * width for g in range(len(summaries))]
            values = [float(getattr(s, key) or 0.0) * (100 if percent else 1) for s in summaries]
            ax.bar(xs, values, width, label=label)
        ax.set_xticks(range(len(summaries)), [s.config for s in summaries])
        ax.set(title=title, ylabel=ylabel, ylim=(0, 105) if percent else None)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


def write_report(result: EvalResult, out_dir: Path) -> list[Path]:
    """Write report.md, report.json and the plots into `out_dir`; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(render_markdown(result), encoding="utf-8")
    js = out_dir / "report.json"
    js.write_text(
        json.dumps(report_json(result), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return [md, js, *write_plots(list(result.summaries.values()), out_dir)]
