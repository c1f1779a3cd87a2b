"""Copy-style targets: the right block's own sentences and list items, quoted verbatim."""

from __future__ import annotations

import random

from tandem.answering.house_format import check_answer
from tandem.documents import Chunk
from tandem.training.copy_target import (
    answer_terms,
    block_units,
    clean,
    customer_phrasing,
    quote,
    with_customer_phrasing,
)
from tandem.training.dataset_build import target_answer
from tandem.training.dataset_card import COPY_MARKER, BuildStats, merge_card

EXPORTS = """CSV files use UTF-8 with a comma separator and a header row. Dates are written as \
`YYYY-MM-DD` and durations in decimal hours (for example `1.75`) and as `hh:mm`.

| Format | Row limit |
|---|---|
| XLSX | 1,000,000 rows |

Note: Large exports — Exports of more than **50,000 rows** are prepared in the background. \
Download links are valid for **7 days**."""

SCHEDULE = """1. Open **Reports** and choose a report, for example **Detailed time**.
2. Set the filters you want (clients, projects, people, billable or not).
3. Click **Export > Schedule export**.

- Daily runs at 06:00.
- Weekly runs every Monday.

Recipients do not need a Kestrel account."""

DISTRACTOR = "Invoices are numbered per workspace. Dates on invoices follow the client's locale."

ROW_LIMIT = """| Format | Row limit |
|---|---|
| XLSX | 1,000,000 rows |

```bash
curl https://api.kestrel.example/v1/exports
```"""


def _new_stats(style: str = "house") -> BuildStats:
    return BuildStats(seed=1, top_k=4, fallback_share=0.2, eval_share=0.15, style=style)


def test_units_are_sentences_and_list_items_without_code_tables_or_markup() -> None:
    units = block_units(EXPORTS + "\n\n```bash\necho hi\n```", 2)
    texts = [u.text for u in units]
    assert texts == [
        "CSV files use UTF-8 with a comma separator and a header row.",
        "Dates are written as `YYYY-MM-DD` and durations in decimal hours (for example `1.75`) "
        "and as `hh:mm`.",
        "Exports of more than 50,000 rows are prepared in the background.",
        "Download links are valid for 7 days.",
    ]
    assert {u.number for u in units} == {2} and all(u.list_id is None for u in units)
    lists = [(u.text, u.list_id) for u in block_units(SCHEDULE, 1) if u.list_id is not None]
    assert [n for _, n in lists] == [1, 1, 1, 2, 2]  # two lists: the procedure, the schedule
    assert lists[2][0] == "Click Export > Schedule export."


def test_clean_drops_emphasis_and_admonition_labels_only() -> None:
    assert clean("Warning: In Kestrel 4.2, exports run **nightly**.") == (
        "In Kestrel 4.2, exports run nightly."
    )
    assert clean("Question: Why do accents look wrong? — Use **UTF-8**.") == "Use UTF-8."
    assert answer_terms("Up to 5 recipients, 50,000 rows and v4.2") >= {"5", "50,000", "v4.2"}


def test_the_opening_quotes_the_sentence_with_the_answer_from_the_right_block() -> None:
    blocks = [DISTRACTOR, EXPORTS]
    found = quote(blocks, [2], "Dates in CSV exports are written as YYYY-MM-DD.", [])
    assert found is not None and not found.steps
    assert [u.text for u in found.opening] == [
        "Dates are written as `YYYY-MM-DD` and durations in decimal hours (for example `1.75`) "
        "and as `hh:mm`."
    ]
    assert found.sources(found.opening) == [2]  # never the distractor


def test_a_procedure_keeps_the_blocks_own_list_items_as_steps() -> None:
    blocks = [DISTRACTOR, EXPORTS, SCHEDULE]
    steps = ["Open Reports and pick a report.", "Set the filters.", "Click Schedule export."]
    found = quote(blocks, [3], "Recipients don't need a Kestrel account to get the export.", steps)
    assert found is not None
    assert [u.text for u in found.steps] == [
        "Open Reports and choose a report, for example Detailed time.",
        "Set the filters you want (clients, projects, people, billable or not).",
        "Click Export > Schedule export.",
    ]
    assert [u.text for u in found.opening] == ["Recipients do not need a Kestrel account."]


def test_no_quote_when_the_answer_sits_only_in_a_table_or_code() -> None:
    assert quote([ROW_LIMIT], [1], "XLSX holds up to 1,000,000 rows.", []) is None


def test_copy_targets_follow_the_house_format_and_quote_verbatim() -> None:
    chunks = [
        Chunk("invoicing.md", "Invoices", DISTRACTOR),
        Chunk("exports.md", "Export", SCHEDULE),
    ]
    stats = _new_stats("copy")
    steps = ["Open Reports.", "Set the filters you want.", "Click Export > Schedule export."]
    answer = target_answer("copy", "No Kestrel account is needed.", steps, chunks, [2], stats)
    assert answer.startswith("Recipients do not need a Kestrel account.\n\nSteps:\n1. Open Reports")
    assert answer.endswith("Sources: [2]")
    assert check_answer(answer, 2, "v4.2").compliant
    assert (stats.copied, stats.copied_steps, stats.authored) == (1, 1, 0)


def test_the_items_own_words_when_no_sentence_holds_the_answer() -> None:
    chunks = [Chunk("exports.md", "Export formats", ROW_LIMIT)]
    stats = _new_stats("copy")
    answer = target_answer("copy", "XLSX holds up to 1,000,000 rows.", [], chunks, [1], stats)
    assert answer == "XLSX holds up to 1,000,000 rows.\n\nSources: [1]"
    assert (stats.copied, stats.authored) == (0, 1)
    house = _new_stats()
    assert (
        target_answer("house", "Use XLSX.", [], chunks, [1], house) == "Use XLSX.\n\nSources: [1]"
    )
    assert (house.copied, house.authored) == (0, 0)


def test_customer_phrasings_wrap_the_shortest_question_and_are_seeded() -> None:
    questions = ["how do I export my timesheets to excel every week", "export xlsx"]
    longer = with_customer_phrasing(questions, random.Random(7))
    assert longer[:2] == questions and len(longer) == 3
    assert "Export xlsx?" in longer[2] and len(longer[2]) > len(questions[0])
    assert longer == with_customer_phrasing(questions, random.Random(7))
    assert customer_phrasing("Why?", random.Random(1)).count("Why?") == 1


def test_the_card_keeps_each_styles_part_when_the_other_is_rewritten() -> None:
    with_copy = merge_card("# Card\nhouse v1\n", "copy", "\n## Copy\ncopy v1\n")
    assert with_copy == f"# Card\nhouse v1\n\n{COPY_MARKER}\n## Copy\ncopy v1\n"
    rewritten = merge_card(with_copy, "house", "# Card\nhouse v2\n")
    assert rewritten == f"# Card\nhouse v2\n\n{COPY_MARKER}\n## Copy\ncopy v1\n"
    assert merge_card(rewritten, "copy", "\n## Copy\ncopy v2\n").endswith("copy v2\n")
    assert merge_card("# Card\nhouse v1\n", "house", "# Card\nhouse v2\n") == "# Card\nhouse v2\n"
