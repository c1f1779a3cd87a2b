"""`tandem eval` against the real stack: a few questions, all four configurations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.conftest import CHAT_KEY, Stack

from tandem.evaluation.run import run_eval

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_eval_runs_the_four_configurations_and_writes_reports(stack: Stack, tmp_path: Path) -> None:
    lines = (ROOT / "eval" / "sample-product.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    chosen = [i for i in items if i.get("release") == "v4.2" and i.get("file")][:2]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(i) + "\n" for i in chosen))
    # 8 answers, four at a time: vLLM batches them, and the harness's threads are exercised
    out = tmp_path / "out"
    result = run_eval(
        stack.url, CHAT_KEY, qa, out, concurrency=4, timeout_s=300, show_progress=False
    )
    assert set(result.summaries) == {"base", "rag", "adapter", "hybrid"}
    assert all(s.failed == 0 for s in result.summaries.values())
    assert result.summaries["hybrid"].source_hit_rate is not None
    assert result.summaries["hybrid"].source_hit_rate > 0
    report = (out / "report.md").read_text()
    assert "hybrid" in report and "rag" in report
    data = json.loads((out / "report.json").read_text())
    assert len(data["questions"]) == 2 * 4
    assert data["concurrency"] == 4
    for plot in ("metrics.png", "latency.png", "tokens.png"):
        assert (out / plot).stat().st_size > 1000
