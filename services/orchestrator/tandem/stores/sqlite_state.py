"""`StateStore` on the data dir's SQLite file: one table per record kind, real transactions.

Compare-and-set is a conditional UPDATE inside `BEGIN IMMEDIATE`: SQLite lets one writer
in at a time across every process that opens the file, so two racing claims serialise and
exactly one sees its expected version.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tandem.stores.sqlite import StateDatabase
from tandem.stores.state import (
    JobRecord,
    LeaseRecord,
    PairPointer,
    PairStats,
    ReleasePair,
    ReleaseRecord,
    SlotPointer,
)

COMPONENT = "shared_state"
SCHEMA = [
    "CREATE TABLE adapter_slots (slot TEXT PRIMARY KEY, active TEXT, canary TEXT, "
    "previous TEXT, history TEXT NOT NULL DEFAULT '[]')",
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, "
    "progress TEXT NOT NULL, result TEXT, error TEXT, created REAL NOT NULL)",
    "CREATE TABLE releases (collection TEXT PRIMARY KEY, release TEXT NOT NULL, "
    "created REAL NOT NULL, vector_space TEXT NOT NULL, report TEXT NOT NULL, "
    "changes TEXT NOT NULL, kept INTEGER NOT NULL)",
    "CREATE TABLE leases (name TEXT PRIMARY KEY, version INTEGER NOT NULL, "
    "owner TEXT NOT NULL, expires REAL NOT NULL, data TEXT NOT NULL)",
    "CREATE TABLE release_pairs (release TEXT PRIMARY KEY, created REAL NOT NULL, "
    "value TEXT NOT NULL)",
    "CREATE TABLE pair_pointer (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "version INTEGER NOT NULL, value TEXT NOT NULL)",
    "CREATE TABLE pair_stats (window_id TEXT NOT NULL, release TEXT NOT NULL, "
    "replica TEXT NOT NULL, answers INTEGER NOT NULL, declined INTEGER NOT NULL, "
    "suggested INTEGER NOT NULL, errors INTEGER NOT NULL, updated REAL NOT NULL, "
    "PRIMARY KEY (window_id, release, replica))",
]


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _release(row: sqlite3.Row) -> ReleaseRecord:
    return ReleaseRecord(
        collection=row["collection"],
        release=row["release"],
        created=float(row["created"]),
        vector_space=row["vector_space"],
        report=_load(row["report"]),
        changes=_load(row["changes"]),
        kept=bool(row["kept"]),
    )


class SqliteStateStore:
    """The one-machine state store (threads and processes share it through SQLite)."""

    def __init__(self, db: StateDatabase) -> None:
        self.db = db
        db.migrate(COMPONENT, SCHEMA)

    def slot_pointer(self, slot: str) -> SlotPointer:
        with self.db.reading() as read:
            row = read.execute("SELECT * FROM adapter_slots WHERE slot = ?", (slot,)).fetchone()
        if row is None:
            return SlotPointer()
        return SlotPointer(
            row["active"], _load(row["canary"]), row["previous"], _load(row["history"])
        )

    def save_slot_pointer(self, slot: str, pointer: SlotPointer) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO adapter_slots VALUES (?, ?, ?, ?, ?)",
                (slot, pointer.active, _dump(pointer.canary), pointer.previous,
                 json.dumps(pointer.history)),
            )  # fmt: skip

    def job(self, job_id: str) -> JobRecord | None:
        with self.db.reading() as read:
            row = read.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        return JobRecord(
            row["id"], row["kind"], row["status"], _load(row["progress"]),
            _load(row["result"]), row["error"], float(row["created"]),
        )  # fmt: skip

    def save_job(self, job: JobRecord) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.kind, job.status, json.dumps(job.progress), _dump(job.result),
                 job.error, job.created),
            )  # fmt: skip

    def release_record(self, collection: str) -> ReleaseRecord | None:
        with self.db.reading() as read:
            row = read.execute(
                "SELECT * FROM releases WHERE collection = ?", (collection,)
            ).fetchone()
        return None if row is None else _release(row)

    def release_records(self) -> list[ReleaseRecord]:
        with self.db.reading() as read:
            rows = read.execute("SELECT * FROM releases ORDER BY created, collection").fetchall()
        return [_release(row) for row in rows]

    def save_release(self, record: ReleaseRecord) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.collection, record.release, record.created, record.vector_space,
                 json.dumps(record.report), json.dumps(record.changes), int(record.kept)),
            )  # fmt: skip

    def drop_releases(self, collections: list[str]) -> None:
        with self.db.transaction() as db:
            db.executemany("DELETE FROM releases WHERE collection = ?", [(c,) for c in collections])

    def lease(self, name: str) -> LeaseRecord:
        with self.db.reading() as read:
            row = read.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
        if row is None:
            return LeaseRecord(name)
        return LeaseRecord(
            name, int(row["version"]), row["owner"], float(row["expires"]), _load(row["data"])
        )

    def swap_lease(
        self, name: str, expected: int, owner: str, expires: float, data: dict[str, Any]
    ) -> bool:
        with self.db.transaction() as db:
            row = db.execute("SELECT version FROM leases WHERE name = ?", (name,)).fetchone()
            if (int(row["version"]) if row else 0) != expected:
                return False
            db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                (name, expected + 1, owner, expires, json.dumps(data)),
            )
        return True

    def release_pair(self, release: str) -> ReleasePair | None:
        with self.db.reading() as read:
            row = read.execute(
                "SELECT value FROM release_pairs WHERE release = ?", (release,)
            ).fetchone()
        return None if row is None else ReleasePair.from_dict(json.loads(row["value"]))

    def release_pairs(self) -> list[ReleasePair]:
        with self.db.reading() as read:
            rows = read.execute("SELECT value FROM release_pairs ORDER BY created, release")
            return [ReleasePair.from_dict(json.loads(row["value"])) for row in rows]

    def save_release_pair(self, pair: ReleasePair) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO release_pairs VALUES (?, ?, ?)",
                (pair.release, pair.created, json.dumps(pair.as_dict())),
            )

    def drop_release_pairs(self, releases: list[str]) -> None:
        with self.db.transaction() as db:
            db.executemany("DELETE FROM release_pairs WHERE release = ?", [(r,) for r in releases])

    def pair_pointer(self) -> PairPointer:
        with self.db.reading() as read:
            row = read.execute("SELECT version, value FROM pair_pointer").fetchone()
        if row is None:
            return PairPointer()
        return PairPointer.from_dict(json.loads(row["value"]), int(row["version"]))

    def swap_pair_pointer(self, expected: int, pointer: PairPointer) -> bool:
        with self.db.transaction() as db:
            row = db.execute("SELECT version FROM pair_pointer").fetchone()
            if (int(row["version"]) if row else 0) != expected:
                return False
            db.execute(
                "INSERT OR REPLACE INTO pair_pointer VALUES (1, ?, ?)",
                (expected + 1, json.dumps(pointer.value())),
            )
        return True

    def save_pair_stats(self, stats: PairStats) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO pair_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (stats.window, stats.release, stats.replica, stats.answers, stats.declined,
                 stats.suggested, stats.errors, stats.updated),
            )  # fmt: skip

    def pair_stats(self, window: str) -> list[PairStats]:
        with self.db.reading() as read:
            rows = read.execute(
                "SELECT * FROM pair_stats WHERE window_id = ? ORDER BY release, replica", (window,)
            ).fetchall()
        return [PairStats(*tuple(row)) for row in rows]
