"""`validate_dataset` on good and broken chat-JSONL files, and the shared label mask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tandem.documents import Chunk
from tandem.rag.prompt import build_messages, fallback_sentence
from tandem.settings import get_settings
from tandem.training.dataset import IGNORE_INDEX, tokenize_example
from tandem.training.validate import (
    ValidationReport,
    context_of,
    render_mask,
    validate_dataset,
)

RELEASE = "v9.0"
CHUNKS = [
    Chunk(file="billing/plans.md", heading="Plans > Change plan", text="Open Billing > Plan."),
    Chunk(file="exports/exports.md", heading="Exports", text="Exports are CSV or JSON."),
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    path = get_settings().model_path
    if not (path / "tokenizer.json").is_file():
        pytest.skip("the base model is not prepared (run `tandem up` once)")
    from tandem.training.dataset import load_tokenizer

    return load_tokenizer(path)


def example(n: int, answer: str | None = None) -> dict[str, Any]:
    """A valid retrieval-shaped example; `n` makes the question unique."""
    question = f"how do i change my plan, case {n} {'x' * n}"
    messages = build_messages([{"role": "user", "content": question}], CHUNKS, RELEASE)
    text = answer or "Open Billing > Plan and pick a new plan.\nSources: [1]"
    return {"messages": [*messages, {"role": "assistant", "content": text}]}


def write(tmp_path: Path, rows: list[Any], good: int = 12) -> Path:
    """Broken `rows` first (lines 1..), then `good` valid examples so counts pass."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    lines += [json.dumps(example(100 + i)) for i in range(good)]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def errors_at(report: ValidationReport, line: int) -> list[str]:
    return [f.message for f in report.errors if f.line == line]


def test_a_good_file_passes(tmp_path: Path, tokenizer: Any) -> None:
    report = validate_dataset(write(tmp_path, []), tokenizer)
    assert report.ok, report.findings
    assert report.n_examples == 12 and report.n_compliant_turns == 12
    assert [f.level for f in report.findings] == ["warning"]  # fewer than 100 examples


def test_bad_json_is_an_error_with_its_line(tmp_path: Path, tokenizer: Any) -> None:
    report = validate_dataset(write(tmp_path, ['{"messages": [', "not json", "[1, 2]"]), tokenizer)
    assert "not valid JSON" in errors_at(report, 1)[0]
    assert "not valid JSON" in errors_at(report, 2)[0]
    assert 'an object with a "messages" list' in errors_at(report, 3)[0]
    assert report.n_examples == 12


def test_text_that_is_not_utf8_is_an_error(tmp_path: Path, tokenizer: Any) -> None:
    path = write(tmp_path, [])
    path.write_bytes(b'{"messages": "\xff"}\n' + path.read_bytes())
    report = validate_dataset(path, tokenizer)
    assert "not UTF-8" in errors_at(report, 1)[0]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "assistant", "content": "Hi.\nSources: [1]"}], "start with a user message"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "Hi."},
            ],
            "must alternate",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}],
            "only allowed first",
        ),
        ([{"role": "tool", "content": "a"}], "role 'tool'"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}], "is empty"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "Hi.", "weight": 2},
            ],
            "must be 0 or 1",
        ),
    ],
)
def test_wrong_roles_and_fields(
    tmp_path: Path, tokenizer: Any, messages: list[dict[str, Any]], expected: str
) -> None:
    report = validate_dataset(write(tmp_path, [{"messages": messages}]), tokenizer)
    assert any(expected in message for message in errors_at(report, 1)), report.findings


def test_no_trained_assistant_turn(tmp_path: Path, tokenizer: Any) -> None:
    only_user = {"messages": [{"role": "user", "content": "hello?"}]}
    weight_zero = {
        "messages": [
            {"role": "user", "content": "hello?"},
            {"role": "assistant", "content": "Hi there.", "weight": 0},
        ]
    }
    report = validate_dataset(write(tmp_path, [only_user, weight_zero]), tokenizer)
    assert "no trained assistant turn" in errors_at(report, 1)[0]
    assert "no trained assistant turn" in errors_at(report, 2)[0]


def test_too_long_for_the_serving_context(tmp_path: Path, tokenizer: Any) -> None:
    long = example(1, answer="Open Billing. " + "word " * 50 + "\nSources: [1]")
    report = validate_dataset(write(tmp_path, [long]), tokenizer, max_len=120)
    assert any("serving context length 120" in m for m in errors_at(report, 1))


def test_duplicates_and_near_duplicates(tmp_path: Path, tokenizer: Any) -> None:
    base = example(1)
    shouted = json.loads(json.dumps(base).replace("how do i change", "HOW do I change"))
    near = json.loads(json.dumps(base).replace("case 1 x", "case 1 x please"))
    report = validate_dataset(write(tmp_path, [base, shouted, near]), tokenizer)
    assert "duplicate of line 1" in errors_at(report, 2)[0]
    assert any(f.line == 3 and "near-duplicate of line 1" in f.message for f in report.warnings)


def test_house_format_is_checked_per_trained_turn(tmp_path: Path, tokenizer: Any) -> None:
    no_sources = example(1, answer="Open Billing > Plan and pick a new plan.")
    bad_block = example(2, answer="Open Billing > Plan.\nSources: [7]")
    wrong_fallback = example(3, answer=fallback_sentence("v1.0"))
    right_fallback = example(4, answer=fallback_sentence(RELEASE))
    report = validate_dataset(
        write(tmp_path, [no_sources, bad_block, wrong_fallback, right_fallback]), tokenizer
    )
    assert "sources_line" in errors_at(report, 1)[0]
    assert "sources_line" in errors_at(report, 2)[0]
    assert "fallback" in errors_at(report, 3)[0]
    assert errors_at(report, 4) == []
    assert report.n_fallback_turns == 2


def test_untrained_history_turns_are_not_format_checked(tmp_path: Path, tokenizer: Any) -> None:
    history = [
        {"role": "user", "content": "how do i change my plan"},
        {"role": "assistant", "content": "free text, cites nothing [3]", "weight": 0},
        {"role": "user", "content": "and back again?"},
    ]
    messages = build_messages(history, CHUNKS, RELEASE)
    messages[2]["weight"] = 0  # type: ignore[typeddict-unknown-key]
    row = {"messages": [*messages, {"role": "assistant", "content": "Yes.\nSources: [1]"}]}
    report = validate_dataset(write(tmp_path, [row]), tokenizer)
    assert errors_at(report, 1) == []


def test_too_few_examples_is_an_error(tmp_path: Path, tokenizer: Any) -> None:
    report = validate_dataset(write(tmp_path, [], good=3), tokenizer)
    assert any(f.line is None and "only 3 usable examples" in f.message for f in report.errors)


def test_context_of_reads_blocks_and_release() -> None:
    user = build_messages([{"role": "user", "content": "q"}], CHUNKS, RELEASE)[-1]["content"]
    assert context_of(user) == (2, RELEASE)
    assert context_of("just a question") == (0, None)
    empty = build_messages([{"role": "user", "content": "q"}], [], RELEASE)[-1]["content"]
    assert context_of(empty) == (0, RELEASE)


def test_mask_trains_only_assistant_tokens_and_end_of_turn(tokenizer: Any) -> None:
    row = example(1)
    tokenized = tokenize_example(row["messages"], tokenizer)
    trained = "".join(
        tokenized.text[a:b]
        for (a, b), label in zip(tokenized.offsets, tokenized.labels, strict=True)
        if label != IGNORE_INDEX
    )
    assert trained == row["messages"][-1]["content"] + tokenizer.eos_token
    marked = render_mask(row["messages"], tokenizer, markers=True).plain
    assert marked.count("[[") == 1 and f"[[{row['messages'][-1]['content']}" in marked


def test_validate_command_exit_codes_and_mask(
    tmp_path: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tandem.training.validate import validate_command

    good = write(tmp_path, [])
    assert validate_command(good, show_mask=1) == 0
    out = capsys.readouterr().out
    assert "ok, 1 warnings" in out and "[[Open Billing > Plan" in out  # not a tty: markers
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert validate_command(bad, show_mask=None) == 1
    assert f"{bad}:1: error: not valid JSON" in capsys.readouterr().out
    assert validate_command(tmp_path / "missing.jsonl", show_mask=None) == 2
