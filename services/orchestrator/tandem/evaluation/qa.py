"""QA files: one JSON object a line with a question and what a correct answer contains."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.errors import BadInput

# `note`: why an item is classified as it is (for readers; the harness ignores it)
_KNOWN_KEYS = {"question", "answer_terms", "file", "heading", "release", "history", "note", "split"}
SPLITS = ("calibration", "held-out")  # thresholds are chosen on the first, judged on the second


@dataclass(frozen=True)
class QAItem:
    """One evaluation question. Empty `answer_terms` means the docs do not answer it.

    `history`: earlier user turns of the conversation, oldest first (a follow-up question).
    """

    question: str
    answer_terms: tuple[str, ...]
    file: str | None = None
    heading: str | None = None
    release: str | None = None
    line: int = 0
    history: tuple[str, ...] = ()
    split: str | None = None  # one of SPLITS; None: the item is in no split

    @property
    def answerable(self) -> bool:
        return bool(self.answer_terms)

    @property
    def kind(self) -> str:
        """The stratum a sample keeps in proportion: answerable, follow-up or unanswerable."""
        if not self.answerable:
            return "unanswerable"
        return "follow-up" if self.history else "answerable"

    def user_turns(self) -> list[str]:
        """The conversation's user turns, the question last."""
        return [*self.history, self.question]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "history": list(self.history),
            "answer_terms": list(self.answer_terms),
            "file": self.file,
            "heading": self.heading,
            "release": self.release,
            "line": self.line,
            "split": self.split,
        }


def _optional_text(record: dict[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: '{key}' must be a non-empty string when given")
    return value.strip()


def parse_qa_line(text: str, line: int, source: str = "qa") -> QAItem:
    """Validate one JSONL line; errors are prefixed with `source:line`."""
    where = f"{source}:{line}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise BadInput(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - _KNOWN_KEYS)
    if unknown:
        raise BadInput(f"{where}: unknown keys {unknown}; allowed: {sorted(_KNOWN_KEYS)}")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadInput(f"{where}: 'question' must be a non-empty string")
    terms = record.get("answer_terms")
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise BadInput(f"{where}: 'answer_terms' must be a list of non-empty strings")
    history = record.get("history", [])
    if not isinstance(history, list) or not all(isinstance(t, str) and t.strip() for t in history):
        raise BadInput(f"{where}: 'history' must be a list of non-empty strings")
    file = _optional_text(record, "file", where)
    heading = _optional_text(record, "heading", where)
    _optional_text(record, "note", where)
    split = _optional_text(record, "split", where)
    if split is not None and split not in SPLITS:
        raise BadInput(f"{where}: 'split' must be one of {list(SPLITS)}")
    if heading and not file:
        raise BadInput(f"{where}: 'heading' needs a 'file' as well")
    return QAItem(
        question=question.strip(),
        answer_terms=tuple(t.strip() for t in terms),
        file=file,
        heading=heading,
        release=_optional_text(record, "release", where),
        line=line,
        history=tuple(t.strip() for t in history),
        split=split,
    )


def load_qa(path: Path) -> list[QAItem]:
    """Read and validate a QA JSONL file; blank lines are skipped, errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"QA file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read QA file {path}: {exc}") from None
    items = [
        parse_qa_line(line, number, path.name)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not items:
        raise BadInput(f"QA file {path} has no questions")
    seen: dict[str, int] = {}
    for item in items:
        key = "\0".join([item.release or "", *item.user_turns()]).casefold()
        if key in seen:
            raise BadInput(
                f"{path.name}:{item.line}: duplicate question (first on line {seen[key]})"
            )
        seen[key] = item.line
    return items


def stratified_sample(items: Sequence[QAItem], size: int, seed: int = 0) -> list[QAItem]:
    """A seeded sample of `size` items with each `kind` in its share of `items` (rounded, at
    least one of each kind present), in file order; all of them when `size` covers them."""
    if size >= len(items):
        return list(items)
    strata: dict[str, list[QAItem]] = {}
    for item in items:
        strata.setdefault(item.kind, []).append(item)
    exact = {k: size * len(v) / len(items) for k, v in strata.items()}
    quota = {k: max(1, int(share)) for k, share in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - int(exact[k]), reverse=True)
    for kind in by_remainder[: max(0, size - sum(quota.values()))]:  # largest remainders
        quota[kind] += 1
    while sum(quota.values()) > size:  # a rare kind's minimum of one: trim the largest
        quota[max(quota, key=lambda k: quota[k])] -= 1
    rng = random.Random(seed)
    chosen = {id(i) for k, v in strata.items() for i in rng.sample(v, min(quota[k], len(v)))}
    return [i for i in items if id(i) in chosen]
