"""SQLite under the data dir: the one database of a single-machine Tandem.

Every embedded record store (`sqlite_state`: pointers, jobs, releases, leases; `feedback`:
the answer log, ratings, reviews; `handoffs`) opens its tables through `StateDatabase`, so
there is one file, one schema-version table and one way to run a transaction. A connection
is opened per transaction: SQLite opens in microseconds, and this keeps threads (uvicorn's
worker threads, the job thread) and processes (`tandem index` beside `tandem up`) from
sharing a connection object. WAL lets readers run while one writer holds `BEGIN IMMEDIATE`;
`busy_timeout` makes a second writer wait instead of failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


class StateDatabase:
    """One SQLite file; `migrate` applies a component's schema steps once, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (`BEGIN IMMEDIATE`): committed on exit, rolled back on error."""
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (one snapshot for every statement inside)."""
        connection = self._connect()
        try:
            connection.execute("BEGIN")
            yield connection
            connection.execute("COMMIT")
        finally:
            connection.close()

    def migrate(self, component: str, steps: Sequence[str]) -> None:
        """Run the schema `steps` of `component` not run yet (step i = version i + 1).

        Each step is one SQL statement; all run in one transaction with the version bump.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            done = int(row["version"]) if row else 0
            for step in steps[done:]:
                db.execute(step)
            if len(steps) > done:
                db.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                    "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, len(steps)),
                )
