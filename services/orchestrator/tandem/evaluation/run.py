"""One evaluation run: QA file -> four configurations -> scores -> report -> gate."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tandem.errors import BadInput
from tandem.evaluation.gate import Gate, check_gate
from tandem.evaluation.harness import Configuration, Harness, Outcome, parse_configs
from tandem.evaluation.qa import QAItem, load_qa
from tandem.evaluation.report import write_report
from tandem.evaluation.result import EvalResult
from tandem.evaluation.scores import score_outcome, summarise

DEFAULT_CONFIGS = "base,rag,adapter,hybrid"


def select_items(items: Sequence[QAItem], release: str | None) -> tuple[list[QAItem], list[str]]:
    """Questions for the served release (or for any); the others are listed as skipped."""
    if release is None:
        return list(items), []
    keep = [i for i in items if i.release in (None, release)]
    skipped = [f"{i.question} [{i.release}]" for i in items if i.release not in (None, release)]
    return keep, skipped


def _progress_runner(
    harness: Harness,
    items: list[QAItem],
    configs: list[Configuration],
    concurrency: int,
    show: bool,
) -> list[Outcome]:
    if not show:
        return harness.run(items, configs, concurrency)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("evaluating", total=len(items) * len(configs))

        def done(outcome: Outcome) -> None:
            state = "failed" if outcome.error else "ok"
            progress.update(task, advance=1, description=f"{outcome.config.name}: {state}")

        return harness.run(items, configs, concurrency, on_done=done)


def run_eval(
    url: str,
    api_key: str,
    qa_path: Path,
    out_dir: Path,
    configs: str | Sequence[str] = DEFAULT_CONFIGS,
    concurrency: int = 1,
    gate: Gate | None = None,
    *,
    release: str | None = "auto",
    timeout_s: float = 120.0,
    show_progress: bool = True,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> EvalResult:
    """Evaluate the configurations against the Tandem at `url` and write the report.

    `release="auto"` asks the server which docs release it serves and skips questions
    written for another one; `None` asks every question. Raises BadInput for a bad QA file
    or configuration list, Unreachable when nothing answers at `url`.
    """
    chosen = parse_configs(configs)
    items = load_qa(qa_path)
    started, clock = datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter()
    with Harness(url, api_key, timeout_s=timeout_s, transport=transport, sleep=sleep) as harness:
        harness.check_reachable()
        serving = harness.serving_release() if release == "auto" else release
        selected, skipped = select_items(items, serving)
        if not selected:
            raise BadInput(
                f"no question in {qa_path} is for release {serving!r}, which {harness.url} serves"
            )
        outcomes = _progress_runner(harness, selected, chosen, concurrency, show_progress)
    scores = [score_outcome(o) for o in outcomes]
    summaries = {
        c.name: summarise(c.name, c.approach, [s for s in scores if s.config == c.name])
        for c in chosen
    }
    result = EvalResult(
        url=harness.url,
        qa_path=qa_path,
        concurrency=concurrency,
        serving_release=serving,
        started_at=started,
        duration_s=time.perf_counter() - clock,
        items_total=len(items),
        skipped=skipped,
        scores=scores,
        summaries=summaries,
        gate=gate,
        violations=check_gate(gate, summaries) if gate is not None else [],
    )
    result.files = write_report(result, out_dir)
    return result
