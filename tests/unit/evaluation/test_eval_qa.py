"""QA file loading and validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tandem.errors import BadInput
from tandem.evaluation.qa import QAItem, load_qa, stratified_sample


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_items_and_skips_blank_lines(qa_file: Path) -> None:
    items = load_qa(qa_file)
    assert [i.line for i in items] == [1, 2, 3]
    assert items[0].answer_terms == ("PAPERLESS_OCR_LANGUAGE", "deu")
    assert items[0].heading == "PAPERLESS_OCR_LANGUAGE"
    assert not items[1].answerable and items[1].file is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"answer_terms": []}', "'question' must be"),
        ('{"question": "q", "answer_terms": "x"}', "'answer_terms' must be a list"),
        ('{"question": "q", "answer_terms": [""]}', "'answer_terms' must be a list"),
        ('{"question": "q", "answer_terms": [], "file": 3}', "'file' must be"),
        ('{"question": "q", "answer_terms": [], "heading": "H"}', "needs a 'file'"),
        ('{"question": "q", "answer_terms": [], "answer": "x"}', "unknown keys"),
        ('{"question": "q", "answer_terms": [], "note": ""}', "'note' must be"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    good = '{"question": "ok?", "answer_terms": ["x"]}'
    path = _write(tmp_path, f"{good}\n\n{line}\n")
    with pytest.raises(BadInput, match=f"qa.jsonl:3: .*{message}"):
        load_qa(path)


def test_duplicate_questions_are_refused(tmp_path: Path) -> None:
    line = '{"question": "Same?", "answer_terms": []}'
    with pytest.raises(BadInput, match="qa.jsonl:2: duplicate question .*line 1"):
        load_qa(_write(tmp_path, f"{line}\n{line}\n"))


def test_a_note_says_why_an_item_is_classified_so_and_is_otherwise_ignored(
    tmp_path: Path,
) -> None:
    line = '{"question": "Gone?", "answer_terms": ["removed"], "note": "the notes say so"}'
    assert load_qa(_write(tmp_path, line))[0].answer_terms == ("removed",)


def test_same_question_for_two_releases_is_fine(tmp_path: Path) -> None:
    lines = [
        f'{{"question": "Limit?", "answer_terms": ["5"], "release": "{r}"}}' for r in ("v1", "v2")
    ]
    assert [i.release for i in load_qa(_write(tmp_path, "\n".join(lines)))] == ["v1", "v2"]


def test_a_follow_up_carries_its_history_and_may_repeat_a_question(tmp_path: Path) -> None:
    lines = [
        '{"question": "and on Pro?", "answer_terms": ["5"], "history": ["Seat limit?"]}',
        '{"question": "and on Pro?", "answer_terms": ["9"], "history": ["Token limit?"]}',
    ]
    items = load_qa(_write(tmp_path, "\n".join(lines)))
    assert items[0].user_turns() == ["Seat limit?", "and on Pro?"]
    assert items[1].to_dict()["history"] == ["Token limit?"]
    with pytest.raises(BadInput, match="'history' must be a list of non-empty strings"):
        load_qa(_write(tmp_path, '{"question": "q?", "answer_terms": [], "history": [""]}'))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not found"):
        load_qa(tmp_path / "nope.jsonl")
    with pytest.raises(BadInput, match="no questions"):
        load_qa(_write(tmp_path, "\n\n"))


def _items(answerable: int, follow_ups: int, unanswerable: int) -> list[QAItem]:
    return (
        [QAItem(f"a{n}", ("x",)) for n in range(answerable)]
        + [QAItem(f"f{n}", ("x",), history=("before",)) for n in range(follow_ups)]
        + [QAItem(f"u{n}", ()) for n in range(unanswerable)]
    )


def test_a_stratified_sample_keeps_each_kind_in_its_share_and_the_file_order() -> None:
    items = _items(60, 6, 14)
    sample = stratified_sample(items, 30, seed=1)
    assert len(sample) == 30
    assert Counter(i.kind for i in sample) == {"answerable": 23, "follow-up": 2, "unanswerable": 5}
    assert sample == [i for i in items if i in sample]  # file order kept
    assert sample == stratified_sample(items, 30, seed=1)  # seeded
    assert sample != stratified_sample(items, 30, seed=2)


def test_a_sample_keeps_a_rare_kind_and_covers_all_when_large_enough() -> None:
    items = _items(40, 1, 1)
    kinds = Counter(i.kind for i in stratified_sample(items, 10))
    assert kinds == {"answerable": 8, "follow-up": 1, "unanswerable": 1}
    assert stratified_sample(items, 42) == items
