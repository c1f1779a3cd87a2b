"""The README's comparison table, rebuilt from the committed reports under docs/eval/."""

from __future__ import annotations

import shutil
from pathlib import Path

from tandem.evaluation.summary import summary_table, write_summary

DOCS_EVAL = Path(__file__).resolve().parents[3] / "docs" / "eval"


def test_one_row_per_configuration_and_run_in_run_order(tmp_path: Path) -> None:
    for run in DOCS_EVAL.glob("*/report.json"):
        (tmp_path / run.parent.name).mkdir()
        shutil.copy(run, tmp_path / run.parent.name / "report.json")
    lines = summary_table(tmp_path)
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4 * 3  # four configurations, three runs
    runs = [row.split("|")[1].strip() for row in rows if row.split("|")[1].strip()]
    # v4.2 was made again after paperless-ngx: the runs of one QA set still stay together
    assert [r.split(" (")[0] for r in runs] == [
        "sample-product-v4.1",
        "sample-product-v4.2",
        "paperless-ngx-v3.0.5",
    ]
    hybrid = [row for row in rows if "**hybrid**" in row]
    assert len(hybrid) == 3 and all("gate " in row for row in hybrid)
    assert "support@v3" in lines[0]
    assert write_summary(tmp_path).read_text().splitlines() == lines
