"""Gate thresholds and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from rich.console import Console
from tests.unit.evaluation.conftest import config_summary
from typer.testing import CliRunner

from tandem.cli.evaluate import EvalOptions, eval_command, execute
from tandem.errors import BadInput
from tandem.evaluation.gate import Gate, check_gate, load_gate
from tandem.evaluation.scores import ConfigSummary


def _hybrid(**values: Any) -> dict[str, ConfigSummary]:
    good: dict[str, Any] = {
        "approach": "Hybrid",
        "mean_coverage": 0.9,
        "source_hit_rate": 0.9,
        "source_hit_questions": 8,
        "compliance_rate": 0.9,
    }
    return {"hybrid": config_summary("hybrid", **{**good, **values})}


def test_gate_passes_and_reports_each_violation() -> None:
    assert check_gate(Gate(max_p95_ms=500), _hybrid()) == []
    violations = check_gate(
        Gate(max_p95_ms=150), _hybrid(mean_coverage=0.2, failed=2, citation_validity_rate=0.5)
    )
    assert violations == [
        "hybrid answer coverage 0.200 is below 0.5",
        "hybrid citation validity 0.500 is below 0.95",
        "hybrid had 2 failed questions, more than 0",
        "hybrid latency p95 200 ms is above 150 ms",
    ]


def test_gate_skips_source_hit_without_expected_sources_and_needs_hybrid() -> None:
    assert check_gate(Gate(), _hybrid(source_hit_rate=None)) == []
    assert "was not run" in check_gate(Gate(), {})[0]


def test_gate_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "gate.yaml"
    yaml_file.write_text("gate:\n  min_coverage: 0.7\n  max_p95_ms: 9000\n")
    gate = load_gate(yaml_file)
    assert (gate.min_coverage, gate.max_p95_ms, gate.min_compliance) == (0.7, 9000, 0.8)
    json_file = tmp_path / "gate.json"
    json_file.write_text(json.dumps({"max_failures": 2, "min_source_hit": None}))
    assert load_gate(json_file).max_failures == 2
    assert load_gate(json_file).min_source_hit is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_coverge: 0.5", "unknown gate keys"),
        ("min_coverage: 5", "between 0 and 1"),
        ("max_failures: 1.5", "whole number"),
        ("- 1", "mapping"),
        ("min_coverage: [", "parse"),
    ],
)
def test_bad_gate_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(BadInput, match=message):
        load_gate(path)


def _options(qa: Path, out: Path, **values: Any) -> EvalOptions:
    return EvalOptions(
        url="http://tandem.test", api_key="k", qa=qa, out=out, show_progress=False, **values
    )


def test_gate_violation_exits_1(fake: Any, qa_file: Path, tmp_path: Path) -> None:
    fake.script["What database is the default?"] = [httpx.Response(400)]
    console = Console(record=True, width=200)
    options = _options(
        qa_file, tmp_path, gate=True, configs="hybrid", thresholds={"max_failures": 0}
    )
    assert execute(options, fake.transport, console) == 1
    text = console.export_text()
    assert "gate failed" in text and "hybrid had 1 failed questions" in text
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["gate"]["passed"] is False


def test_gate_pass_exits_0(fake: Any, qa_file: Path, tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    options = _options(qa_file, tmp_path, thresholds={"min_coverage": 0.9})  # implies --gate
    assert execute(options, fake.transport, console) == 0
    text = console.export_text()
    assert "gate passed" in text
    assert "compliance all / answered" in text and "100% / 100%" in text
    assert (tmp_path / "report.md").exists()


def test_threshold_flags_override_the_gate_file(fake: Any, qa_file: Path, tmp_path: Path) -> None:
    gate_file = tmp_path / "gate.json"
    gate_file.write_text('{"max_p95_ms": 0.001}')
    options = _options(
        qa_file, tmp_path / "o", gate_file=gate_file, thresholds={"max_p95_ms": 60000.0}
    )
    assert execute(options, fake.transport, Console(record=True)) == 0


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    return app


def test_cli_unreachable_server_exits_2_naming_the_url(qa_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _cli(),
        [
            "--url",
            "http://127.0.0.1:9",
            "--qa",
            str(qa_file),
            "--out",
            str(tmp_path),
            "--timeout",
            "2",
        ],
    )
    assert result.exit_code == 2
    assert "http://127.0.0.1:9/healthz" in result.output


def test_cli_bad_qa_file_exits_2(tmp_path: Path) -> None:
    qa = tmp_path / "bad.jsonl"
    qa.write_text('{"question": "x"}\n')
    result = CliRunner().invoke(_cli(), ["--qa", str(qa), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output


def test_cli_bad_threshold_exits_2(qa_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["--qa", str(qa_file), "--min-coverage", "80"])
    assert result.exit_code == 2 and "between 0 and 1" in result.output
