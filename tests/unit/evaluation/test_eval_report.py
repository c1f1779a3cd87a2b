"""A whole run against the fake Tandem: report.md, report.json and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from tests.unit.evaluation.conftest import config_summary

from tandem.evaluation.report import best_for, key_strength
from tandem.evaluation.run import run_eval


def _run(fake: Any, qa_file: Path, out: Path, configs: str = "base,rag,adapter,hybrid") -> Any:
    return run_eval(
        "http://tandem.test",
        "key",
        qa_file,
        out,
        configs,
        1,
        None,
        show_progress=False,
        transport=fake.transport,
        sleep=lambda _: None,
    )


def test_report_files_are_written(fake: Any, qa_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(fake, qa_file, out)
    assert {p.name for p in result.files} == {
        "report.md",
        "report.json",
        "metrics.png",
        "latency.png",
        "tokens.png",
    }
    for name in ("metrics.png", "latency.png", "tokens.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    markdown = (out / "report.md").read_text()
    assert "| Configuration (approach) | Key strength | Answer coverage |" in markdown
    assert "| Latency p50 / p95 | Failures | Best for |" in markdown
    for config in ("**base**", "**rag**", "**adapter**", "**hybrid**"):
        assert config in markdown
    assert "## Compliance per house rule" in markdown and "| sources_line |" in markdown
    assert "## Per-question details" in markdown and "Does it run on a toaster?" in markdown


def test_report_shows_outcomes_right_page_and_unsupported_literals(
    fake: Any, qa_file: Path, tmp_path: Path
) -> None:
    _run(fake, qa_file, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert (
        "| Right page | Format compliance (all / answered) | Citation validity "
        "| Answerable: answered / suggested / declined "
        "| Unanswerable: answered / suggested / declined | Unsupported literals (answered) |"
    ) in markdown
    rag = next(line for line in markdown.splitlines() if line.startswith("| **rag**"))
    assert (
        "| 100% (n=1) | 100% / 100% | 100% | 50% / 50% / 0% (n=2) | 0% / 0% / 100% (n=1) |" in rag
    )
    adapter = next(line for line in markdown.splitlines() if line.startswith("| **adapter**"))
    assert "| 0% / 100% / 0% (n=1) | 100% (n=2) |" in adapter
    assert "| suggested (weak_evidence): 1 page |" in markdown
    assert "| answered; unsupported: 1.7 |" in markdown
    assert "| declined (off_topic) |" in markdown


def test_report_json_holds_summaries_and_every_answer(
    fake: Any, qa_file: Path, tmp_path: Path
) -> None:
    result = _run(fake, qa_file, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["serving_release"] == "v3.0.5" and data["gate"] is None
    assert list(data["summaries"]) == ["base", "rag", "adapter", "hybrid"]
    assert len(data["questions"]) == 4 * 3
    hybrid = data["summaries"]["hybrid"]
    assert hybrid["mean_coverage"] == 1.0 and hybrid["source_hit_rate"] == 1.0
    assert hybrid["compliance_rate"] == 1.0 and hybrid["failed"] == 0
    assert data["summaries"]["base"]["citation_validity_rate"] < 1
    rag = data["summaries"]["rag"]
    assert rag["answerable_suggested_rate"] == 0.5 and rag["unanswerable_declined_rate"] == 1
    assert rag["right_page_rate"] == 1.0 and rag["right_page_questions"] == 1
    assert data["summaries"]["adapter"]["unsupported_literal_rate"] == 1.0
    suggested = next(
        q for q in data["questions"] if q["outcome"] == "suggested" and q["suggestions"]
    )
    assert suggested["suggestion_hit"] is True and suggested["abstained"] == "weak_evidence"
    first = data["questions"][0]
    assert first["expected"]["answer_terms"] and "answer" in first and "rules" in first
    assert result.summaries["hybrid"].mean_prompt_tokens == 400


def test_failed_questions_show_in_the_report(fake: Any, qa_file: Path, tmp_path: Path) -> None:
    fake.script["What database is the default?"] = [httpx.Response(503)] * 3
    result = _run(fake, qa_file, tmp_path, "hybrid")
    assert result.summaries["hybrid"].failed == 1
    markdown = (tmp_path / "report.md").read_text()
    assert "| 1/3 |" in markdown and "FAILED: HTTP 503" in markdown


def test_questions_for_another_release_are_skipped(fake: Any, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"question": "How do I set the OCR language?", "answer_terms": ["deu"], '
        '"release": "v3.0.5"}\n'
        '{"question": "Old OCR setting?", "answer_terms": ["x"], "release": "v2.0"}\n'
    )
    result = _run(fake, qa, tmp_path / "out", "hybrid")
    assert result.summaries["hybrid"].questions == 1
    assert result.skipped == ["Old OCR setting? [v2.0]"]
    assert "1 skipped" in (tmp_path / "out" / "report.md").read_text()


def test_key_strength_and_best_for_come_from_the_numbers() -> None:
    fast = config_summary("base", latency_p95_ms=50.0, mean_coverage=0.1)
    accurate = config_summary("hybrid", mean_coverage=0.9, mean_prompt_tokens=500.0)
    tidy = config_summary("adapter", compliance_rate=0.95)
    summaries = [fast, accurate, tidy]
    assert key_strength(accurate, summaries).key == "mean_coverage"  # type: ignore[union-attr]
    assert key_strength(tidy, summaries).key == "compliance_rate"  # type: ignore[union-attr]
    assert key_strength(fast, summaries).key == "latency_p95_ms"  # type: ignore[union-attr]
    assert best_for(fast, summaries) == (
        "Best for latency-sensitive chat (50 ms); weakest on answer coverage (10%)."
    )
    assert best_for(fast, [fast]).startswith("Only configuration")
