"""The answer log and the feedback on it: what each customer saw, and what they said about it.

Every answer Tandem gives is kept (for `retention_days`) with its conversation, sources
(full block text, so a training example can rebuild the exact prompt), adapter version and
index release; thumbs up/down and comments attach to it by answer id, at most one rating an
answer (a second replaces the first). Reviewed items (approved, or given a corrected answer)
are training material and outlive the retention window; everything else is deleted after it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from tandem.errors import NotFound, TooLarge
from tandem.rag.prompt import ChatMessage
from tandem.stores.sqlite import StateDatabase

Rating = Literal["up", "down"]
Clock = Callable[[], float]
DAY_S = 86_400.0
BASE_LABEL = "base"  # the adapter filter value and summary key of base-model answers
NO_RELEASE = "none"  # the release key of answers given without retrieval

SCHEMA = [
    "CREATE TABLE answers (id TEXT PRIMARY KEY, created REAL NOT NULL, "
    "conversation TEXT NOT NULL, answer TEXT NOT NULL, sources TEXT NOT NULL, "
    "adapter TEXT, release TEXT, collection TEXT)",
    "CREATE INDEX answers_created ON answers (created)",
    "CREATE TABLE feedback (answer_id TEXT PRIMARY KEY "
    "REFERENCES answers (id) ON DELETE CASCADE, rating TEXT NOT NULL, comment TEXT NOT NULL, "
    "rated REAL NOT NULL, corrected TEXT, approved INTEGER NOT NULL DEFAULT 0)",
    "ALTER TABLE answers ADD COLUMN outcome TEXT",
    "ALTER TABLE answers ADD COLUMN pair TEXT",
]


@dataclass(frozen=True)
class AnswerRecord:
    """One answer as the customer saw it; sources: n, file, heading, release, text, score."""

    id: str
    created: float
    conversation: list[ChatMessage]
    answer: str
    sources: list[dict[str, Any]]
    adapter: str | None  # "support@v3"; None for the base model
    release: str | None  # None when retrieval was off
    collection: str | None = None
    outcome: str | None = None  # "answered" | "suggested" | "declined"; None: logged before
    pair: str | None = None  # the release pair (docs + adapter) that answered; None: no pair

    @property
    def question(self) -> str:
        return self.conversation[-1]["content"]


@dataclass(frozen=True)
class FeedbackItem:
    answer: AnswerRecord
    rating: Rating
    comment: str
    rated: float
    corrected: str | None = None  # an agent's better answer
    approved: bool = False  # an agent confirmed the answer as given

    @property
    def reviewed(self) -> bool:
        return self.approved or self.corrected is not None


@dataclass(frozen=True)
class FeedbackFilter:
    rating: Rating | None = None
    adapter: str | None = None  # "support@v3", or "base"
    release: str | None = None
    since: float | None = None  # rated at or after (unix seconds)
    reviewed: bool | None = None


class AnswerLog(Protocol):
    """What the chat service needs: keep each answer it gives."""

    def record_answer(self, record: AnswerRecord) -> None: ...


class FeedbackLog(AnswerLog, Protocol):
    """The answer log plus ratings, review and queries."""

    def answer(self, answer_id: str) -> AnswerRecord:
        """The answer as logged; NotFound for an unknown or expired one."""
        ...

    def rate(self, answer_id: str, rating: Rating, comment: str) -> None:
        """Attach (or replace) the rating; NotFound for an unknown or expired answer."""
        ...

    def review(self, answer_id: str, corrected: str | None, approved: bool) -> FeedbackItem:
        """Attach a corrected answer and/or approve; NotFound when the answer has no rating."""
        ...

    def items(self, filters: FeedbackFilter) -> list[FeedbackItem]:
        """Rated answers matching `filters`, newest rating first."""
        ...


def check_comment(comment: str, max_chars: int) -> str:
    """The comment, or TooLarge (413) when it is over the cap."""
    if len(comment) > max_chars:
        raise TooLarge(f"comment is {len(comment)} characters; at most {max_chars}")
    return comment


def unknown_answer(answer_id: str) -> NotFound:
    return NotFound(f"no answer {answer_id!r}: unknown, or older than the retention window")


def no_rating(answer_id: str) -> NotFound:
    return NotFound(f"no feedback on answer {answer_id!r} to review")


def adapter_key(record: AnswerRecord) -> str:
    return record.adapter or BASE_LABEL


def release_key(record: AnswerRecord) -> str:
    return record.release or NO_RELEASE


def _shares(items: list[FeedbackItem], key: Callable[[AnswerRecord], str]) -> dict[str, Any]:
    groups: dict[str, list[FeedbackItem]] = {}
    for item in items:
        groups.setdefault(key(item.answer), []).append(item)
    return {name: _counts(group) for name, group in sorted(groups.items())}


def _counts(items: list[FeedbackItem]) -> dict[str, Any]:
    down = sum(item.rating == "down" for item in items)
    return {"ratings": len(items), "down": down, "down_share": round(down / len(items), 3)}


def summarise(items: list[FeedbackItem]) -> dict[str, Any]:
    """Ratings and the share of thumbs down, overall, per adapter version and per release."""
    overall = _counts(items) if items else {"ratings": 0, "down": 0, "down_share": 0.0}
    return {
        **overall,
        "by_adapter": _shares(items, adapter_key),
        "by_release": _shares(items, release_key),
    }


def matches(item: FeedbackItem, filters: FeedbackFilter) -> bool:
    """The filter in Python (the in-memory log; SQLite and Qdrant run the same in the store)."""
    return (
        (filters.rating is None or item.rating == filters.rating)
        and (filters.adapter is None or adapter_key(item.answer) == filters.adapter)
        and (filters.release is None or release_key(item.answer) == filters.release)
        and (filters.since is None or item.rated >= filters.since)
        and (filters.reviewed is None or item.reviewed == filters.reviewed)
    )


class SqliteFeedbackLog:
    """The answer log and feedback in the state database (one SQLite file under the data dir)."""

    def __init__(self, db: StateDatabase, retention_days: int, clock: Clock = time.time) -> None:
        self.db = db
        self.retention_s = retention_days * DAY_S
        self.clock = clock
        db.migrate("feedback", SCHEMA)

    def _cutoff(self) -> float:
        return self.clock() - self.retention_s

    def record_answer(self, record: AnswerRecord) -> None:
        if self.retention_s <= 0:
            return
        with self.db.transaction() as db:
            db.execute(
                "DELETE FROM answers WHERE created < ? AND id NOT IN (SELECT answer_id FROM "
                "feedback WHERE approved = 1 OR corrected IS NOT NULL)",
                (self._cutoff(),),
            )
            db.execute(
                "INSERT INTO answers (id, created, conversation, answer, sources, adapter, "
                "release, collection, outcome, pair) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.created,
                    json.dumps(record.conversation),
                    record.answer,
                    json.dumps(record.sources),
                    record.adapter,
                    record.release,
                    record.collection,
                    record.outcome,
                    record.pair,
                ),
            )

    def answer(self, answer_id: str) -> AnswerRecord:
        with self.db.reading() as db:
            row = db.execute(
                "SELECT * FROM answers WHERE id = ? AND created >= ?", (answer_id, self._cutoff())
            ).fetchone()
        if row is None:
            raise unknown_answer(answer_id)
        return _record(row)

    def rate(self, answer_id: str, rating: Rating, comment: str) -> None:
        with self.db.transaction() as db:
            found = db.execute(
                "SELECT 1 FROM answers WHERE id = ? AND created >= ?", (answer_id, self._cutoff())
            ).fetchone()
            if found is None:
                raise unknown_answer(answer_id)
            db.execute(
                "INSERT INTO feedback (answer_id, rating, comment, rated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (answer_id) DO UPDATE SET rating = excluded.rating, "
                "comment = excluded.comment, rated = excluded.rated",
                (answer_id, rating, comment, self.clock()),
            )

    def review(self, answer_id: str, corrected: str | None, approved: bool) -> FeedbackItem:
        with self.db.transaction() as db:
            changed = db.execute(
                "UPDATE feedback SET corrected = COALESCE(?, corrected), approved = ? "
                "WHERE answer_id = ?",
                (corrected, int(approved), answer_id),
            ).rowcount
            if not changed:
                raise no_rating(answer_id)
            row = db.execute(_SELECT + " WHERE f.answer_id = ?", (answer_id,)).fetchone()
        return _item(row)

    def items(self, filters: FeedbackFilter) -> list[FeedbackItem]:
        where, params = _where(filters)
        with self.db.reading() as db:
            rows = db.execute(f"{_SELECT} {where} ORDER BY f.rated DESC", params).fetchall()
        return [_item(row) for row in rows]


_SELECT = (
    "SELECT a.*, f.rating, f.comment, f.rated, f.corrected, f.approved "
    "FROM feedback f JOIN answers a ON a.id = f.answer_id"
)


def _where(filters: FeedbackFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.rating is not None:
        clauses.append("f.rating = ?")
        params.append(filters.rating)
    if filters.adapter is not None:
        clauses.append("COALESCE(a.adapter, ?) = ?")
        params += [BASE_LABEL, filters.adapter]
    if filters.release is not None:
        clauses.append("COALESCE(a.release, ?) = ?")
        params += [NO_RELEASE, filters.release]
    if filters.since is not None:
        clauses.append("f.rated >= ?")
        params.append(filters.since)
    if filters.reviewed is not None:
        negate = "" if filters.reviewed else "NOT "
        clauses.append(f"{negate}(f.approved = 1 OR f.corrected IS NOT NULL)")
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _record(row: sqlite3.Row) -> AnswerRecord:
    return AnswerRecord(
        id=row["id"],
        created=row["created"],
        conversation=json.loads(row["conversation"]),
        answer=row["answer"],
        sources=json.loads(row["sources"]),
        adapter=row["adapter"],
        release=row["release"],
        collection=row["collection"],
        outcome=row["outcome"],
        pair=row["pair"],
    )


def _item(row: sqlite3.Row) -> FeedbackItem:
    record = _record(row)
    return FeedbackItem(
        record, row["rating"], row["comment"], row["rated"], row["corrected"], bool(row["approved"])
    )


class InMemoryFeedbackLog:
    """The same contract in a dict, for unit tests of the routes and the dataset builder."""

    def __init__(self, retention_days: int = 30, clock: Clock = time.time) -> None:
        self.retention_s = retention_days * DAY_S
        self.clock = clock
        self.answers: dict[str, AnswerRecord] = {}
        self.feedback: dict[str, FeedbackItem] = {}

    def record_answer(self, record: AnswerRecord) -> None:
        if self.retention_s > 0:
            cutoff = self.clock() - self.retention_s
            for old in [a for a in self.answers.values() if a.created < cutoff]:
                item = self.feedback.get(old.id)
                if item is None or not item.reviewed:
                    del self.answers[old.id]
                    self.feedback.pop(old.id, None)
            self.answers[record.id] = record

    def answer(self, answer_id: str) -> AnswerRecord:
        record = self.answers.get(answer_id)
        if record is None or record.created < self.clock() - self.retention_s:
            raise unknown_answer(answer_id)
        return record

    def rate(self, answer_id: str, rating: Rating, comment: str) -> None:
        record = self.answer(answer_id)
        previous = self.feedback.get(answer_id)
        item = FeedbackItem(record, rating, comment, self.clock())
        if previous is not None:
            item = replace(item, corrected=previous.corrected, approved=previous.approved)
        self.feedback[answer_id] = item

    def review(self, answer_id: str, corrected: str | None, approved: bool) -> FeedbackItem:
        item = self.feedback.get(answer_id)
        if item is None:
            raise no_rating(answer_id)
        item = replace(item, corrected=corrected or item.corrected, approved=approved)
        self.feedback[answer_id] = item
        return item

    def items(self, filters: FeedbackFilter) -> list[FeedbackItem]:
        found: Iterable[FeedbackItem] = (i for i in self.feedback.values() if matches(i, filters))
        return sorted(found, key=lambda i: i.rated, reverse=True)
