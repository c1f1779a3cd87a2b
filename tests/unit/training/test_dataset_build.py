"""The RAFT-style builder's pure parts: right blocks, house answers, the seeded plan."""

from __future__ import annotations

from tandem.answering.house_format import check_answer
from tandem.documents import Chunk
from tandem.indexing.release_index import gold_chunks
from tandem.training.dataset_build import QaItem, house_answer, phrasings, plan

CHUNKS = [
    Chunk("exports/exports.md", "Exporting data > Scheduled exports", "Intro."),
    Chunk("exports/exports.md", "Exporting data > Scheduled exports > Schedule an export", "1."),
    Chunk("exports/exports.md", "Exporting data > Scheduled exports > Manage", "Edit."),
    Chunk("notes.md", "Release notes > Scheduled exports", "New in 4.2."),
]


def item(n: int, heading: str = "Scheduled exports", followup: bool = False) -> QaItem:
    return QaItem(
        id=f"item-{n:03d}",
        release="v4.2",
        file="exports/exports.md",
        heading=heading,
        questions=[f"how to export {n}", f"How to export {n}?", f"export help {n}"],
        answer="Use Export > Schedule export.",
        steps=["Open Reports.", "Click Export."],
        followup={"question": "and pause it?", "answer": "Click Pause.", "steps": []}
        if followup
        else None,
    )


def test_right_blocks_match_the_heading_path_on_the_same_page() -> None:
    golds = gold_chunks("exports/exports.md", "Scheduled exports", CHUNKS)
    assert golds == {CHUNKS[0]}  # not the release notes page, not the subsections
    assert gold_chunks("exports/exports.md", "Schedule an export", CHUNKS) == {CHUNKS[1]}


def test_a_heading_without_text_is_answered_by_its_subsections() -> None:
    chunks = CHUNKS[1:]
    assert gold_chunks("exports/exports.md", "Scheduled exports", chunks) == set(chunks[:2])


def test_house_answers_pass_the_format_check() -> None:
    answer = house_answer("Use Export > Schedule export.", ["Open Reports.", "Click Export."], [2])
    assert answer.endswith("Sources: [2]")
    assert "Steps:\n1. Open Reports.\n2. Click Export." in answer
    assert check_answer(answer, 4, "v4.2").compliant
    assert check_answer(house_answer("Click Pause.", [], [1, 3]), 4, "v4.2").compliant


def test_phrasings_drop_repeats_that_differ_in_case_or_punctuation() -> None:
    assert phrasings(item(1)) == ["how to export 1", "export help 1"]


def test_the_plan_is_seeded_and_splits_by_section() -> None:
    items = [item(n, heading=f"Heading {n % 7}", followup=n % 3 == 0) for n in range(40)]
    eval_ids, fallback = plan(items)
    assert (eval_ids, fallback) == plan(items)
    units = sum(len(phrasings(i)) + bool(i.followup) for i in items)
    assert abs(len(fallback) - 0.2 * units) <= 1
    eval_groups = {i.group for i in items if i.id in eval_ids}
    assert eval_ids and all(i.id in eval_ids for i in items if i.group in eval_groups)
