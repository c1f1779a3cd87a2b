"""report.md, report.json and PNG plots of an evaluation run."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tandem.answer_format import RULES
from tandem.evaluation.metrics import ConfigSummary

if TYPE_CHECKING:
    from tandem.evaluation.run import EvalResult


@dataclass(frozen=True)
class Metric:
    """A ranked figure: how to read it off a summary, and what being best at it is good for."""

    key: str
    label: str
    best_phrase: str
    use: str
    higher_is_better: bool
    quality: bool  # an answer-quality figure (as opposed to a cost)


METRICS = (
    Metric("mean_coverage", "answer coverage", "highest answer coverage",
           "questions whose answers must contain the right facts", True, True),
    Metric("source_hit_rate", "source hit rate", "best source hit rate",
           "answers users check against the linked docs page", True, True),
    Metric("compliance_rate", "format compliance", "best format compliance",
           "a consistent house answer format", True, True),
    Metric("citation_validity_rate", "citation validity", "most valid citations",
           "answers whose citations must hold up", True, True),
    Metric("mean_prompt_tokens", "prompt tokens", "fewest prompt tokens",
           "the cheapest requests", False, False),
    Metric("latency_p95_ms", "latency p95", "lowest p95 latency",
           "latency-sensitive chat", False, False),
    Metric("mean_completion_tokens", "completion tokens", "fewest completion tokens",
           "short, cheap replies", False, False),
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
    ordered = sorted(set(known.values()), reverse=metric.higher_is_better)
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
        m for m in METRICS
        if m.quality and m is not strength and (r := _ranks(summaries, m))
        and summary.config in r and r[summary.config] == max(r.values())
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


def comparison_table(summaries: Sequence[ConfigSummary]) -> list[str]:
    """The RAG-vs-fine-tuning table, every cell measured."""
    lines = [
        "| Configuration (approach) | Key strength | Answer coverage | Source hit rate "
        "| Format compliance | Citation validity | Prompt tokens | Completion tokens "
        "| Latency p50 / p95 | Failures | Best for |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        strength = key_strength(s, summaries)
        strength_text = (
            f"{strength.best_phrase} ({_fmt(strength, _value(s, strength))})" if strength else "—"
        )
        hit = _pct(s.source_hit_rate) + (f" (n={s.source_hit_questions})"
                                         if s.source_hit_rate is not None else "")
        lines.append(
            f"| **{s.config}**: {s.approach} | {strength_text} | {_pct(s.mean_coverage)} "
            f"| {hit} | {_pct(s.compliance_rate)} | {_pct(s.citation_validity_rate)} "
            f"| {_num(s.mean_prompt_tokens)} | {_num(s.mean_completion_tokens)} "
            f"| {_num(s.latency_p50_ms)} / {_num(s.latency_p95_ms, ' ms')} "
            f"| {s.failed}/{s.questions} | {_cell(best_for(s, summaries))} |"
        )
    return lines


def _rules_table(summaries: Sequence[ConfigSummary]) -> list[str]:
    lines = ["| Rule | " + " | ".join(s.config for s in summaries) + " |",
             "|---|" + "---:|" * len(summaries)]
    for rule in RULES:
        lines.append(f"| {rule} | " + " | ".join(_pct(s.rule_rates.get(rule))
                                                 for s in summaries) + " |")
    return lines


def _details_table(result: EvalResult) -> list[str]:
    lines = ["| Question | Config | Coverage | Compliant | Answer (first 200 chars) |",
             "|---|---|---:|:---:|---|"]
    for s in result.scores:
        shown = f"FAILED: {s.error}" if s.failed else s.answer[:200]
        lines.append(f"| {_cell(s.question)} | {s.config} | {s.coverage:.0%} "
                     f"| {'yes' if s.compliant else 'no'} | {_cell(shown or '(empty)')} |")
    return lines


def _header(result: EvalResult) -> list[str]:
    adapters = sorted({a for s in result.summaries.values() for a in s.adapters})
    evaluated = result.items_total - len(result.skipped)
    lines = [
        "# Tandem evaluation report", "",
        f"- Server: `{result.url}`; docs release served: `{result.serving_release or 'unknown'}`;"
        f" adapter: {', '.join(f'`{a}`' for a in adapters) or 'n/a'}",
        f"- QA file: `{result.qa_path}`: {evaluated} of {result.items_total} questions evaluated"
        + (f" ({len(result.skipped)} skipped: written for another release)" if result.skipped
           else ""),
        f"- Run: {result.started_at}, {result.duration_s:.0f} s, concurrency {result.concurrency}",
        "",
    ]
    return lines


_DEFINITIONS = (
    "Coverage: share of a question's `answer_terms` found in the answer (case-insensitive, "
    "whole words; for questions the docs do not answer: 1 when the answer is the house "
    "fallback). Source hit: the expected file (and heading) is among the sources, over "
    "questions with an expected file and retrieval on. Compliance: all house-format rules "
    "pass. Citation validity: every `[n]` in the answer names a block that was given. "
    "Failed questions count as misses in every rate; latency and tokens are over answered "
    "questions (client-measured latency of the last try)."
)


def render_markdown(result: EvalResult) -> str:
    """The whole report.md text."""
    summaries = list(result.summaries.values())
    lines = _header(result) + ["## Comparison", ""] + comparison_table(summaries)
    lines += ["", _DEFINITIONS, "", "![metrics](metrics.png) ![latency](latency.png) "
              "![tokens](tokens.png)", ""]
    if result.gate is not None:
        verdict = "**passed**" if not result.violations else "**failed**"
        lines += ["## Gate (hybrid)", "", f"Thresholds: `{json.dumps(result.gate.to_dict())}` "
                  f"— {verdict}", ""] + [f"- {v}" for v in result.violations] + [""]
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
        "gate": None if result.gate is None else {
            "thresholds": result.gate.to_dict(),
            "violations": result.violations,
            "passed": not result.violations,
        },
        "questions": [s.to_dict() for s in result.scores],
    }


def _bars(path: Path, title: str, ylabel: str, groups: Sequence[str],
          series: dict[str, list[float]], percent: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) * max(1, len(series)) / 2), 4.0))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v * 100 if percent else v for v in values], width, label=name)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if percent:
        ax.set_ylim(0, 105)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_Getter = Callable[[ConfigSummary], float | None]


def write_plots(summaries: Sequence[ConfigSummary], out_dir: Path) -> list[Path]:
    """metrics.png, latency.png and tokens.png (missing values are drawn as 0)."""
    names = [s.config for s in summaries]

    def series(*pairs: tuple[str, _Getter]) -> dict[str, list[float]]:
        return {label: [get(s) or 0.0 for s in summaries] for label, get in pairs}

    return [
        _bars(out_dir / "metrics.png", "Quality per configuration", "% of questions", names,
              series(("coverage", lambda s: s.mean_coverage),
                     ("source hit", lambda s: s.source_hit_rate),
                     ("compliance", lambda s: s.compliance_rate),
                     ("citation validity", lambda s: s.citation_validity_rate)), percent=True),
        _bars(out_dir / "latency.png", "Latency per configuration", "ms", names,
              series(("p50", lambda s: s.latency_p50_ms), ("p95", lambda s: s.latency_p95_ms))),
        _bars(out_dir / "tokens.png", "Mean tokens per answer", "tokens", names,
              series(("prompt", lambda s: s.mean_prompt_tokens),
                     ("completion", lambda s: s.mean_completion_tokens))),
    ]


def write_report(result: EvalResult, out_dir: Path) -> list[Path]:
    """Write report.md, report.json and the plots into `out_dir`; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(render_markdown(result), encoding="utf-8")
    js = out_dir / "report.json"
    js.write_text(json.dumps(report_json(result), indent=2, ensure_ascii=False) + "\n",
                  encoding="utf-8")
    return [md, js, *write_plots(list(result.summaries.values()), out_dir)]
