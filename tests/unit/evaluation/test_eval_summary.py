"""The README's comparison table, rebuilt from the committed reports under docs/eval/."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tandem.evaluation.run import run_eval
from tandem.evaluation.summary import summary_table, write_summary

DOCS_EVAL = Path(__file__).resolve().parents[3] / "docs" / "eval"


def test_one_row_per_configuration_and_run_in_run_order(tmp_path: Path) -> None:
    for run in DOCS_EVAL.glob("*/report.json"):
        (tmp_path / run.parent.name).mkdir()
        shutil.copy(run, tmp_path / run.parent.name / "report.json")
    lines = summary_table(tmp_path)
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4 * 5  # four configurations, five runs
    runs = [row.split("|")[1].strip() for row in rows if row.split("|")[1].strip()]
    # v4.2 was made again after paperless-ngx: the runs of one QA set still stay together
    assert [r.split(" (")[0] for r in runs] == [
        "sample-product-v4.1",
        "sample-product-v4.2",
        "paperless-ngx-v3.0.5",
        "sample-product-customer-v4.2",
        "paperless-ngx-customer-v3.0.5",
    ]
    hybrid = [row for row in rows if "**hybrid**" in row]
    # reports made before outcomes existed show n/a for them; the customer-voice runs have them
    assert len(hybrid) == 5 and all(row.count("| n/a ") == 4 for row in hybrid[:3])
    assert all("| n/a " not in row for row in hybrid[3:])
    assert "support@v3" in lines[0]
    assert write_summary(tmp_path).read_text().splitlines() == lines


def test_outcome_shares_right_page_and_unsupported_literals_per_configuration(
    fake: Any, qa_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "paperless-ngx-v3.0.5"
    run_eval("http://tandem.test", "", qa_file, out, show_progress=False, transport=fake.transport)
    lines = summary_table(tmp_path)
    assert "| right page | format compliance (all / answered) |" in lines[2]
    assert "| unanswerable: answered / suggested / declined | unsupported literals |" in lines[2]
    rows = {row.split("|")[2].strip("* "): row for row in lines[4:]}
    # rag suggests the OCR page, hybrid answers from it; adapter invents a version (fake)
    rag = "| 100 % | 100 % / 100 % | 50 % / 50 % / 0 % (n=2) | 0 % / 0 % / 100 % (n=1) | 0 % |"
    assert rag in rows["rag"]
    assert "| 100 % | **100 % / 100 %** | 100 % / 0 % / 0 % (n=2) |" in rows["hybrid"]
    assert "| 0 % / 100 % / 0 % (n=1) | 100 % |" in rows["adapter"]
