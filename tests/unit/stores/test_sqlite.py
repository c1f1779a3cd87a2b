from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tandem.stores.sqlite import StateDatabase

STEPS = [
    "CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "ALTER TABLE counter ADD COLUMN note TEXT",
]


def test_migrate_runs_each_step_once(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.sqlite3")
    db.migrate("counter", STEPS[:1])
    db.migrate("counter", STEPS)  # only the second step runs now
    db.migrate("counter", STEPS)  # nothing left to run
    with db.reading() as read:
        columns = [row["name"] for row in read.execute("PRAGMA table_info(counter)")]
        version = read.execute("SELECT version FROM schema_versions").fetchone()["version"]
    assert columns == ["name", "value", "note"]
    assert version == 2


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.sqlite3")
    db.migrate("counter", STEPS)
    with pytest.raises(RuntimeError), db.transaction() as write:
        write.execute("INSERT INTO counter (name, value) VALUES ('a', 1)")
        raise RuntimeError("disk on fire")
    with db.reading() as read:
        assert read.execute("SELECT COUNT(*) FROM counter").fetchone()[0] == 0


def test_concurrent_writers_serialise(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.sqlite3")
    db.migrate("counter", STEPS)
    with db.transaction() as write:
        write.execute("INSERT INTO counter (name, value) VALUES ('hits', 0)")

    def bump() -> None:
        for _ in range(50):
            with db.transaction() as write:
                value = write.execute("SELECT value FROM counter").fetchone()["value"]
                write.execute("UPDATE counter SET value = ?", (value + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.reading() as read:
        assert read.execute("SELECT value FROM counter").fetchone()["value"] == 200
