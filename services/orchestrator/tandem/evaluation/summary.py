"""One table over every run of `make eval` (the README's), read back from each run's report.json.

    python -m tandem.evaluation.summary [DIR]     # DIR: make eval's --out (eval-out/)

`make eval` writes it to `DIR/summary.md` after its runs; this rebuilds that file from the
reports (and prints it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tandem.evaluation.gate import GATED_CONFIG
from tandem.evaluation.scores import OUTCOMES
from tandem.settings import PROJECT_ROOT

HEADER = (
    "| set (questions) | configuration | answer coverage | source hit | right page "
    "| format compliance (all / answered) | answerable: answered / suggested / declined "
    "| unanswerable: answered / suggested / declined | unsupported literals "
    "| prompt tokens | latency p50 |"
)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _shares(summary: dict[str, Any], kind: str) -> str:
    """'answered / suggested / declined (n=…)'; n/a in reports made before outcomes existed."""
    n = summary.get(f"{kind}_questions")
    rates = [summary.get(f"{kind}_{outcome}_rate") for outcome in OUTCOMES]
    if not n or rates[0] is None:
        return "n/a"
    return " / ".join(_pct(rate) for rate in rates) + f" (n={n})"


def _rows(report: dict[str, Any]) -> list[str]:
    rows = []
    for n, config in enumerate(report["configs"]):
        s = report["summaries"][config]
        label = f"{report['run']} ({s['questions']})" if n == 0 else ""
        bold = "**" if config == GATED_CONFIG else ""  # the configuration Tandem serves
        latency = "n/a" if s["latency_p50_ms"] is None else f"{s['latency_p50_ms'] / 1000:.1f} s"
        compliance = f"{_pct(s['compliance_rate'])} / {_pct(s.get('compliance_answered_rate'))}"
        rows.append(
            f"| {label} | {bold}{config}{bold} | {bold}{_pct(s['mean_coverage'])}{bold} "
            f"| {_pct(s['source_hit_rate'])} | {_pct(s.get('right_page_rate'))} "
            f"| {bold}{compliance}{bold} | {_shares(s, 'answerable')} "
            f"| {_shares(s, 'unanswerable')} | {_pct(s.get('unsupported_literal_rate'))} "
            f"| {s['mean_prompt_tokens']:.0f} | {latency} |"
        )
    return rows


def _qa_set(report: dict[str, Any]) -> str:
    """The QA set of a run (`<set>-<release>`, the folder `make eval` names it)."""
    return str(report["run"]).removesuffix(f"-{report['serving_release']}")


def summary_table(root: Path) -> list[str]:
    """The comparison over every `<set>-<release>/report.json` under `root`, in run order,
    the runs of one QA set together."""
    reports = []
    for path in sorted(root.glob("*/report.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        report["run"] = path.parent.name
        reports.append(report)
    if not reports:
        raise SystemExit(f"no */report.json under {root}")
    adapters = sorted({a for r in reports for s in r["summaries"].values() for a in s["adapters"]})
    reports.sort(key=lambda r: r["started_at"])
    first = reports[0]["started_at"]
    # runs of one QA set stay together (a set re-run alone keeps its place): sets in the order
    # of their first run, each set's releases in the order they ran
    set_started: dict[str, str] = {}
    for report in reports:
        set_started.setdefault(_qa_set(report), report["started_at"])
    reports.sort(key=lambda r: (set_started[_qa_set(r)], r["started_at"]))
    lines = [
        f"Runs from {first}, adapter(s) {', '.join(adapters) or 'none'}, concurrency "
        f"{', '.join(sorted({str(r['concurrency']) for r in reports}))}.",
        "",
        HEADER,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for report in reports:
        lines += _rows(report)
    return lines


def write_summary(root: Path) -> Path:
    path = root / "summary.md"
    path.write_text("\n".join(summary_table(root)) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, nargs="?", default=PROJECT_ROOT / "eval-out")
    path = write_summary(parser.parse_args().root)  # and show what it wrote
    print(path.read_text(encoding="utf-8"), end="")


if __name__ == "__main__":
    main()
