"""`tandem dataset from-feedback`: reviewed feedback -> chat JSONL that `validate` accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tandem.cli import app
from tandem.documents import Chunk
from tandem.rag.prompt import build_messages
from tandem.settings import get_settings
from tandem.stores.feedback import AnswerRecord, InMemoryFeedbackLog, SqliteFeedbackLog
from tandem.stores.sqlite import StateDatabase
from tandem.training.feedback_data import write_feedback_dataset
from tandem.training.validate import validate_dataset

SOURCES = [
    {
        "n": 1,
        "file": "billing/plans.md",
        "heading": "Plans > Change plan",
        "release": "v4.2",
        "text": "Open Billing > Plan and pick a plan.",
        "score": 0.8,
    },
    {
        "n": 2,
        "file": "exports/exports.md",
        "heading": "Exports",
        "release": "v4.2",
        "text": "Exports are CSV or JSON.",
        "score": 0.3,
    },
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    path = get_settings().model_path
    if not (path / "tokenizer.json").is_file():
        pytest.fail(f"the base model is not prepared at {path}: run `tandem model prepare`")
    from tandem.training.dataset import load_tokenizer

    return load_tokenizer(path)


def answered(log: Any, n: int, answer: str = "Open Billing > Plan.\nSources: [1]") -> str:
    answer_id = f"chat-{n:04d}"
    conversation = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": f"How do I change my plan, case {n}?"},
    ]
    log.record_answer(
        AnswerRecord(answer_id, 1e9 + n, conversation, answer, SOURCES, "support@v3", "v4.2")
    )
    return answer_id


def filled_log(log: Any) -> Any:
    """12 usable items (6 corrected, 6 approved thumbs-up) and 3 that must be left out."""
    for n in range(6):
        log.rate(answered(log, n, "I think it is in Profile."), "down", "wrong page")
        log.review(f"chat-{n:04d}", "Open Billing > Plan and pick a plan.\nSources: [1]", True)
    for n in range(6, 12):
        log.rate(answered(log, n), "up", "")
        log.review(f"chat-{n:04d}", None, True)
    log.rate(answered(log, 12), "up", "")  # not reviewed
    log.rate(answered(log, 13), "down", "")  # not reviewed
    log.rate(answered(log, 14), "down", "")
    log.review("chat-0014", None, True)  # approved thumbs-down without a correction
    return log


def test_reviewed_feedback_becomes_a_valid_dataset(tmp_path: Path, tokenizer: Any) -> None:
    log = filled_log(InMemoryFeedbackLog(retention_days=100_000, clock=lambda: 1e9 + 100))
    out = tmp_path / "feedback.jsonl"
    stats = write_feedback_dataset(log, out)
    assert (stats.corrected, stats.approved) == (6, 6)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 12
    report = validate_dataset(out, tokenizer)
    assert report.ok, [f.message for f in report.errors]
    assert report.n_examples == 12 and report.n_compliant_turns == 12


def test_the_user_turn_is_the_serving_prompt(tmp_path: Path) -> None:
    log = filled_log(InMemoryFeedbackLog(retention_days=100_000, clock=lambda: 1e9 + 100))
    out = tmp_path / "feedback.jsonl"
    write_feedback_dataset(log, out)
    example = next(json.loads(line) for line in out.read_text().splitlines() if "case 3?" in line)
    chunks = [Chunk(s["file"], s["heading"], s["text"], s["release"]) for s in SOURCES]
    conversation = log.answers["chat-0003"].conversation
    assert example["messages"][:-1] == [
        {**m, "weight": 0} if m["role"] == "assistant" else dict(m)
        for m in build_messages(conversation, chunks, "v4.2")
    ]
    assert example["messages"][-1] == {
        "role": "assistant",
        "content": "Open Billing > Plan and pick a plan.\nSources: [1]",
    }


def test_cli_writes_from_the_state_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TANDEM_FEEDBACK__RETENTION_DAYS", "100000")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        log = SqliteFeedbackLog(StateDatabase(settings.state_path), 100_000, lambda: 1e9 + 100)
        log.rate(answered(log, 1), "down", "")
        correction = tmp_path / "fix.txt"
        correction.write_text("Open Billing > Plan.\nSources: [1]\n")
        runner = CliRunner()
        reviewed = runner.invoke(
            app, ["feedback", "review", "chat-0001", "--corrected", str(correction)]
        )
        assert reviewed.exit_code == 0, reviewed.output
        out = tmp_path / "out.jsonl"
        written = runner.invoke(app, ["dataset", "from-feedback", "--out", str(out)])
        assert written.exit_code == 0 and "1 examples" in written.output
        assert json.loads(out.read_text())["messages"][-1]["content"].startswith("Open Billing")
        listed = runner.invoke(app, ["feedback", "list", "--rating", "down"])
        assert "chat-0001" in listed.output and '"down_share": 1.0' in listed.output
    finally:
        get_settings.cache_clear()
