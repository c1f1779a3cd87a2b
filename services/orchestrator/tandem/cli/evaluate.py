"""`tandem eval`: exit 0 ok, 1 the gate failed, 2 bad input or the server is unreachable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from tandem.errors import BadInput, DependencyDown
from tandem.evaluation.gate import Gate, load_gate
from tandem.evaluation.report import outcome_shares
from tandem.evaluation.result import EvalResult
from tandem.evaluation.run import DEFAULT_CONFIGS, run_eval
from tandem.evaluation.scores import ConfigSummary

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@dataclass
class EvalOptions:
    """What `tandem eval` was asked to do, independent of how it was asked."""

    url: str
    api_key: str
    qa: Path
    out: Path
    configs: str = DEFAULT_CONFIGS
    concurrency: int = 1
    gate: bool = False
    gate_file: Path | None = None
    thresholds: dict[str, float | int | None] | None = None
    release: str = "auto"
    timeout_s: float = 120.0
    show_progress: bool = True


def resolve_gate(options: EvalOptions) -> Gate | None:
    """Defaults < gate file < flags; None when no gate was asked for."""
    thresholds = {k: v for k, v in (options.thresholds or {}).items() if v is not None}
    if not (options.gate or options.gate_file or thresholds):
        return None
    base = load_gate(options.gate_file) if options.gate_file else Gate()
    return base.with_overrides(**thresholds)


_COLUMNS = (
    "config",
    "coverage",
    "source hit",
    "right page",
    "compliance all / answered",
    "answerable: answered / suggested / declined",
    "unanswerable: answered / suggested / declined",
    "unsupported literals",
    "citations",
    "p50/p95 ms",
    "failed",
)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _summary_row(s: ConfigSummary) -> list[str]:
    return [
        s.config,
        _pct(s.mean_coverage),
        _pct(s.source_hit_rate),
        _pct(s.right_page_rate),
        f"{_pct(s.compliance_rate)} / {_pct(s.compliance_answered_rate)}",
        outcome_shares(s, "answerable"),
        outcome_shares(s, "unanswerable"),
        _pct(s.unsupported_literal_rate),
        _pct(s.citation_validity_rate),
        f"{s.latency_p50_ms or 0:.0f}/{s.latency_p95_ms or 0:.0f}",
        f"{s.failed}/{s.questions}",
    ]


def _print_summary(console: Console, result: EvalResult) -> None:
    table = Table(title="Tandem evaluation")
    for column in _COLUMNS:
        table.add_column(column)
    for summary in result.summaries.values():
        table.add_row(*_summary_row(summary))
    console.print(table)
    for path in result.files:
        console.print(f"wrote {path}")


def execute(
    options: EvalOptions,
    transport: httpx.BaseTransport | None = None,
    console: Console | None = None,
) -> int:
    """Run the evaluation and return the exit code (the CLI's body, callable from tests)."""
    out = console or Console()
    err = Console(stderr=True) if console is None else console
    try:
        gate = resolve_gate(options)
        result = run_eval(
            options.url,
            options.api_key,
            options.qa,
            options.out,
            options.configs,
            options.concurrency,
            gate,
            release=None if options.release == "any" else options.release,
            timeout_s=options.timeout_s,
            show_progress=options.show_progress,
            transport=transport,
        )
    except (BadInput, DependencyDown) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return EXIT_BAD_INPUT
    _print_summary(out, result)
    if result.gate is None:
        return EXIT_OK
    if result.violations:
        err.print("[red]gate failed:[/red]", highlight=False)
        for violation in result.violations:
            err.print(f"  - {violation}", highlight=False)
        return EXIT_GATE_FAILED
    out.print("[green]gate passed[/green]")
    return EXIT_OK


def eval_command(
    qa: Annotated[Path, typer.Option("--qa", help="QA file, one JSON object a line.")],
    url: Annotated[
        str, typer.Option("--url", envvar="TANDEM_EVAL_URL", help="Base URL of the running Tandem.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key",
            envvar="TANDEM_EVAL_API_KEY",
            help="Chat API key (empty for an open local server).",
        ),
    ] = "",
    out: Annotated[Path, typer.Option("--out", help="Folder for report.md/json and plots.")] = Path(
        "eval-out"
    ),
    configs: Annotated[
        str, typer.Option("--configs", help="Comma-separated configurations.")
    ] = DEFAULT_CONFIGS,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Requests in flight at once.")
    ] = 1,
    gate: Annotated[
        bool, typer.Option("--gate", help="Exit 1 when hybrid misses thresholds.")
    ] = False,
    gate_file: Annotated[
        Path | None, typer.Option("--gate-file", help="Thresholds (YAML/JSON).")
    ] = None,
    min_coverage: Annotated[float | None, typer.Option("--min-coverage")] = None,
    min_source_hit: Annotated[float | None, typer.Option("--min-source-hit")] = None,
    min_compliance: Annotated[float | None, typer.Option("--min-compliance")] = None,
    min_citation_validity: Annotated[float | None, typer.Option("--min-citation-validity")] = None,
    max_failures: Annotated[int | None, typer.Option("--max-failures")] = None,
    max_p95_ms: Annotated[float | None, typer.Option("--max-p95-ms")] = None,
    release: Annotated[
        str,
        typer.Option(
            "--release",
            help="Only questions for this release; 'auto' = the served one, 'any' = all.",
        ),
    ] = "auto",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 120.0,
) -> None:
    """Evaluate base, RAG, adapter and hybrid on a QA file; write report.md, report.json, PNGs."""
    options = EvalOptions(
        url=url,
        api_key=api_key,
        qa=qa,
        out=out,
        configs=configs,
        concurrency=concurrency,
        gate=gate,
        gate_file=gate_file,
        release=release,
        timeout_s=timeout,
        thresholds={
            "min_coverage": min_coverage,
            "min_source_hit": min_source_hit,
            "min_compliance": min_compliance,
            "min_citation_validity": min_citation_validity,
            "max_failures": max_failures,
            "max_p95_ms": max_p95_ms,
        },
    )
    raise typer.Exit(execute(options))
