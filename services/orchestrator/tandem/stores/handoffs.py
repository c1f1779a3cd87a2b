"""Handoffs to a person: each one kept with what Tandem answered, until the help desk has it.

A handoff is `pending` from the moment the customer asks for a person until the webhook
answers 2xx (`delivered`) or `max_attempts` attempts failed (`failed`); an operator's retry
makes a failed one pending again. `next_attempt` is when a delivery worker may try it next:
claiming a handoff moves it past the attempt's deadline, so two workers (replicas, or a
worker beside a restarted one) never send the same handoff at once, and a worker that died
mid-attempt leaves it due again. The contact is stored, listed to operators and sent to
the help desk, never logged (it is left out of the record's repr).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from tandem.errors import Conflict, NotFound
from tandem.rag.prompt import ChatMessage
from tandem.stores.sqlite import StateDatabase

Status = Literal["pending", "delivered", "failed"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "failed")
Clock = Callable[[], float]
DAY_S = 86_400.0

SCHEMA = [
    "CREATE TABLE handoffs (id TEXT PRIMARY KEY, created REAL NOT NULL, answer_id TEXT NOT NULL, "
    "contact TEXT NOT NULL, note TEXT NOT NULL, transcript TEXT NOT NULL, answered TEXT NOT NULL, "
    "outcome TEXT NOT NULL, release TEXT, adapter TEXT, status TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, last_error TEXT, next_attempt REAL NOT NULL, delivered REAL)",
    "CREATE INDEX handoffs_due ON handoffs (status, next_attempt)",
    "CREATE INDEX handoffs_created ON handoffs (created)",
]


@dataclass(frozen=True)
class HandoffRecord:
    """One handoff; `answered`: the answer's outcome, text, sources, release and adapter."""

    id: str
    created: float
    answer_id: str
    contact: str = field(repr=False)
    note: str
    transcript: list[ChatMessage]
    answered: dict[str, Any]
    status: Status = "pending"
    attempts: int = 0
    last_error: str | None = None
    next_attempt: float = 0.0
    delivered: float | None = None

    @property
    def outcome(self) -> str:
        return str(self.answered.get("outcome") or "answered")

    @property
    def release(self) -> str | None:
        return self.answered.get("release")

    @property
    def adapter(self) -> str | None:
        return self.answered.get("adapter")


@dataclass(frozen=True)
class HandoffFilter:
    status: Status | None = None
    release: str | None = None
    adapter: str | None = None
    since: float | None = None  # created at or after (unix seconds)


class HandoffStore(Protocol):
    """Where handoffs wait for the help desk: SQLite beside the answer log, Qdrant in server
    mode (`qdrant_records`), a dict in tests."""

    def create(self, record: HandoffRecord) -> None:
        """Keep a new handoff (and drop those older than the retention window)."""
        ...

    def get(self, handoff_id: str) -> HandoffRecord:
        """The handoff; NotFound when there is none."""
        ...

    def items(self, filters: HandoffFilter, limit: int = 1000) -> list[HandoffRecord]:
        """Handoffs matching `filters`, newest first."""
        ...

    def claim_due(self, now: float, hold_s: float, limit: int) -> list[HandoffRecord]:
        """Pending handoffs due at `now`, each now held from other workers for `hold_s`."""
        ...

    def finish_attempt(
        self, handoff_id: str, status: Status, error: str | None, next_attempt: float, now: float
    ) -> HandoffRecord:
        """Count one attempt and store its result (a pending one is due at `next_attempt`)."""
        ...

    def retry(self, handoff_id: str, now: float) -> HandoffRecord:
        """Make a failed or pending handoff due now with a fresh set of attempts; Conflict
        when it was delivered (it is never sent again)."""
        ...


def matches(record: HandoffRecord, filters: HandoffFilter) -> bool:
    """The filter in Python (the in-memory store; SQLite and Qdrant run it in the store)."""
    return (
        (filters.status is None or record.status == filters.status)
        and (filters.release is None or record.release == filters.release)
        and (filters.adapter is None or record.adapter == filters.adapter)
        and (filters.since is None or record.created >= filters.since)
    )


def missing_handoff(handoff_id: str) -> NotFound:
    return NotFound(f"no handoff {handoff_id!r}: unknown, or older than the retention window")


def delivered_already(handoff_id: str) -> Conflict:
    return Conflict(f"handoff {handoff_id!r} was delivered already; it is never sent twice")


class SqliteHandoffStore:
    """Handoffs in the state database, beside the answer log they refer to."""

    def __init__(self, db: StateDatabase, retention_days: int, clock: Clock = time.time) -> None:
        self.db = db
        self.retention_s = retention_days * DAY_S
        self.clock = clock
        db.migrate("handoffs", SCHEMA)

    def create(self, record: HandoffRecord) -> None:
        with self.db.transaction() as db:
            if self.retention_s > 0:
                cutoff = self.clock() - self.retention_s
                db.execute("DELETE FROM handoffs WHERE created < ?", (cutoff,))
            db.execute(
                "INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.created, record.answer_id, record.contact, record.note,
                 json.dumps(record.transcript), json.dumps(record.answered), record.outcome,
                 record.release, record.adapter, record.status, record.attempts,
                 record.last_error, record.next_attempt, record.delivered),
            )  # fmt: skip

    def get(self, handoff_id: str) -> HandoffRecord:
        with self.db.reading() as db:
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        if row is None:
            raise missing_handoff(handoff_id)
        return _record(row)

    def items(self, filters: HandoffFilter, limit: int = 1000) -> list[HandoffRecord]:
        where, params = _where(filters)
        with self.db.reading() as db:
            rows = db.execute(
                f"SELECT * FROM handoffs {where} ORDER BY created DESC LIMIT ?", [*params, limit]
            ).fetchall()
        return [_record(row) for row in rows]

    def claim_due(self, now: float, hold_s: float, limit: int) -> list[HandoffRecord]:
        with self.db.transaction() as db:
            rows = db.execute(
                "SELECT * FROM handoffs WHERE status = 'pending' AND next_attempt <= ? "
                "ORDER BY next_attempt LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE handoffs SET next_attempt = ? WHERE id = ?",
                [(now + hold_s, row["id"]) for row in rows],
            )
        return [_record(row) for row in rows]

    def finish_attempt(
        self, handoff_id: str, status: Status, error: str | None, next_attempt: float, now: float
    ) -> HandoffRecord:
        delivered = now if status == "delivered" else None
        with self.db.transaction() as db:
            db.execute(
                "UPDATE handoffs SET status = ?, attempts = attempts + 1, last_error = "
                "COALESCE(?, last_error), next_attempt = ?, delivered = ? "
                "WHERE id = ? AND status = 'pending'",
                (status, error, next_attempt, delivered, handoff_id),
            )
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        if row is None:
            raise missing_handoff(handoff_id)
        return _record(row)

    def retry(self, handoff_id: str, now: float) -> HandoffRecord:
        with self.db.transaction() as db:
            row = db.execute("SELECT status FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
            if row is None:
                raise missing_handoff(handoff_id)
            if row["status"] == "delivered":
                raise delivered_already(handoff_id)
            db.execute(
                "UPDATE handoffs SET status = 'pending', attempts = 0, next_attempt = ? "
                "WHERE id = ?",
                (now, handoff_id),
            )
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        return _record(row)


def _where(filters: HandoffFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", filters.status),
        ("release", filters.release),
        ("adapter", filters.adapter),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if filters.since is not None:
        clauses.append("created >= ?")
        params.append(filters.since)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _record(row: sqlite3.Row) -> HandoffRecord:
    return HandoffRecord(
        id=row["id"],
        created=row["created"],
        answer_id=row["answer_id"],
        contact=row["contact"],
        note=row["note"],
        transcript=json.loads(row["transcript"]),
        answered=json.loads(row["answered"]),
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        next_attempt=row["next_attempt"],
        delivered=row["delivered"],
    )


class InMemoryHandoffStore:
    """The same contract in a dict, for unit tests of the routes and the delivery worker."""

    def __init__(self, retention_days: int = 30, clock: Clock = time.time) -> None:
        self.retention_s = retention_days * DAY_S
        self.clock = clock
        self.records: dict[str, HandoffRecord] = {}
        self._lock = threading.Lock()

    def create(self, record: HandoffRecord) -> None:
        with self._lock:
            if self.retention_s > 0:
                cutoff = self.clock() - self.retention_s
                self.records = {k: r for k, r in self.records.items() if r.created >= cutoff}
            self.records[record.id] = record

    def get(self, handoff_id: str) -> HandoffRecord:
        record = self.records.get(handoff_id)
        if record is None:
            raise missing_handoff(handoff_id)
        return record

    def items(self, filters: HandoffFilter, limit: int = 1000) -> list[HandoffRecord]:
        found = [r for r in self.records.values() if matches(r, filters)]
        return sorted(found, key=lambda r: r.created, reverse=True)[:limit]

    def claim_due(self, now: float, hold_s: float, limit: int) -> list[HandoffRecord]:
        with self._lock:
            due = sorted(
                (
                    r
                    for r in self.records.values()
                    if r.status == "pending" and r.next_attempt <= now
                ),
                key=lambda r: r.next_attempt,
            )[:limit]
            for record in due:
                self.records[record.id] = replace(record, next_attempt=now + hold_s)
        return due

    def finish_attempt(
        self, handoff_id: str, status: Status, error: str | None, next_attempt: float, now: float
    ) -> HandoffRecord:
        with self._lock:
            record = self.get(handoff_id)
            if record.status == "pending":
                record = replace(
                    record,
                    status=status,
                    attempts=record.attempts + 1,
                    last_error=error if error is not None else record.last_error,
                    next_attempt=next_attempt,
                    delivered=now if status == "delivered" else None,
                )
                self.records[handoff_id] = record
            return record

    def retry(self, handoff_id: str, now: float) -> HandoffRecord:
        with self._lock:
            record = self.get(handoff_id)
            if record.status == "delivered":
                raise delivered_already(handoff_id)
            record = replace(record, status="pending", attempts=0, next_attempt=now)
            self.records[handoff_id] = record
            return record
