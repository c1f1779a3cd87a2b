"""The handoff store contract, run over SQLite, Qdrant (qdrant-client's local mode, which runs
the server's filters and conditional writes in-process) and the in-memory fake."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tandem.errors import Conflict, NotFound
from tandem.stores.handoffs import (
    DAY_S,
    HandoffFilter,
    HandoffRecord,
    HandoffStore,
    InMemoryHandoffStore,
    SqliteHandoffStore,
)
from tandem.stores.qdrant_records import QdrantHandoffStore
from tandem.stores.sqlite import StateDatabase

NOW = 1_800_000_000.0


def handoff(handoff_id: str, created: float = NOW, release: str = "v4.2") -> HandoffRecord:
    return HandoffRecord(
        id=handoff_id,
        created=created,
        answer_id="chat-1",
        contact="ana@example.com",
        note="please call",
        transcript=[{"role": "user", "content": "Can I export to Jira?"}],
        answered={"outcome": "declined", "answer": "I couldn't find this.", "sources": [],
                  "release": release, "adapter": "support@v3"},
        next_attempt=created,
    )  # fmt: skip


Factory = Callable[[Path], HandoffStore]


def sqlite_store(tmp: Path) -> HandoffStore:
    return SqliteHandoffStore(StateDatabase(tmp / "state.sqlite3"), 30, clock=lambda: NOW)


def memory_store(tmp: Path) -> HandoffStore:
    return InMemoryHandoffStore(30, clock=lambda: NOW)


def qdrant_store(tmp: Path) -> HandoffStore:
    return QdrantHandoffStore(QdrantClient(":memory:"), 30, clock=lambda: NOW)


@pytest.fixture(
    params=[sqlite_store, memory_store, qdrant_store], ids=["sqlite", "memory", "qdrant"]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> HandoffStore:
    factory: Factory = request.param
    return factory(tmp_path)


def test_a_handoff_keeps_what_was_answered(store: HandoffStore) -> None:
    store.create(handoff("h1"))
    kept = store.get("h1")
    assert kept.status == "pending" and kept.attempts == 0
    assert kept.outcome == "declined" and kept.release == "v4.2"
    assert kept.adapter == "support@v3"
    assert kept.transcript[0]["content"] == "Can I export to Jira?"
    assert "ana@example.com" not in repr(kept)  # the contact is never logged
    with pytest.raises(NotFound):
        store.get("nope")


def test_claiming_holds_a_handoff_from_other_workers(store: HandoffStore) -> None:
    store.create(handoff("h1"))
    assert [r.id for r in store.claim_due(NOW, 15, 10)] == ["h1"]
    assert store.claim_due(NOW + 1, 15, 10) == []  # held while the attempt runs
    assert [r.id for r in store.claim_due(NOW + 16, 15, 10)] == ["h1"]  # the worker died


def test_attempts_count_until_delivered_and_then_nothing_is_due(store: HandoffStore) -> None:
    store.create(handoff("h1"))
    failed = store.finish_attempt("h1", "pending", "HTTP 500: boom", NOW + 5, NOW)
    assert failed.attempts == 1 and failed.last_error == "HTTP 500: boom"
    assert store.claim_due(NOW + 4, 15, 10) == []
    store.claim_due(NOW + 5, 15, 10)
    done = store.finish_attempt("h1", "delivered", None, NOW + 6, NOW + 6)
    assert done.status == "delivered" and done.attempts == 2 and done.delivered == NOW + 6
    assert done.last_error == "HTTP 500: boom"  # kept for the operator
    assert store.claim_due(NOW + 10_000, 15, 10) == []
    again = store.finish_attempt("h1", "failed", "late", NOW + 7, NOW + 7)
    assert again.status == "delivered" and again.attempts == 2  # a late result changes nothing


def test_retry_makes_a_failed_handoff_due_and_refuses_a_delivered_one(
    store: HandoffStore,
) -> None:
    store.create(handoff("h1"))
    store.create(handoff("h2"))
    store.finish_attempt("h1", "failed", "ConnectError", NOW + 60, NOW)
    retried = store.retry("h1", NOW + 100)
    assert retried.status == "pending" and retried.attempts == 0
    assert "h1" in [r.id for r in store.claim_due(NOW + 100, 15, 10)]
    store.finish_attempt("h2", "delivered", None, NOW, NOW)
    with pytest.raises(Conflict):
        store.retry("h2", NOW)
    with pytest.raises(NotFound):
        store.retry("nope", NOW)


def test_filters_and_order(store: HandoffStore) -> None:
    store.create(handoff("old", created=NOW - 100, release="v4.1"))
    store.create(handoff("new"))
    store.finish_attempt("old", "failed", "x", NOW, NOW)
    assert [r.id for r in store.items(HandoffFilter())] == ["new", "old"]
    assert [r.id for r in store.items(HandoffFilter(status="failed"))] == ["old"]
    assert [r.id for r in store.items(HandoffFilter(release="v4.2"))] == ["new"]
    assert [r.id for r in store.items(HandoffFilter(adapter="support@v9"))] == []
    assert [r.id for r in store.items(HandoffFilter(since=NOW - 50))] == ["new"]
    assert [r.id for r in store.items(HandoffFilter(), limit=1)] == ["new"]


def test_handoffs_older_than_the_retention_window_are_dropped(store: HandoffStore) -> None:
    store.create(handoff("ancient", created=NOW - 31 * DAY_S))
    store.create(handoff("fresh"))
    assert [r.id for r in store.items(HandoffFilter())] == ["fresh"]


def test_the_sqlite_store_survives_a_reopen(tmp_path: Path) -> None:
    sqlite_store(tmp_path).create(handoff("h1"))
    assert [r.id for r in sqlite_store(tmp_path).claim_due(NOW, 15, 10)] == ["h1"]


def test_a_second_worker_claims_nothing_another_holds(tmp_path: Path) -> None:
    """Two replicas' delivery workers on one store: each handoff goes to one of them."""
    client = QdrantClient(":memory:")
    first, second = (QdrantHandoffStore(client, 30, clock=lambda: NOW) for _ in range(2))
    for n in range(3):
        first.create(handoff(f"h{n}", created=NOW + n))
    assert [r.id for r in second.claim_due(NOW + 5, 15, 2)] == ["h0", "h1"]
    assert [r.id for r in first.claim_due(NOW + 5, 15, 10)] == ["h2"]
    assert first.claim_due(NOW + 6, 15, 10) == second.claim_due(NOW + 6, 15, 10) == []
    done = first.finish_attempt("h0", "delivered", None, NOW + 7, NOW + 7)
    assert second.get("h0") == done and done.status == "delivered"


def test_the_qdrant_store_survives_every_pod_being_replaced(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    QdrantHandoffStore(client, 30, clock=lambda: NOW).create(handoff("h1"))
    client.close()
    reopened = QdrantClient(path=str(tmp_path / "qdrant"))
    store = QdrantHandoffStore(reopened, 30, clock=lambda: NOW)
    assert [r.id for r in store.claim_due(NOW, 15, 10)] == ["h1"]
    assert store.get("h1").contact == "ana@example.com"
    reopened.close()


@pytest.mark.parametrize("factory", [sqlite_store, memory_store], ids=["sqlite", "memory"])
def test_racing_workers_each_claim_a_handoff_once(factory: Factory, tmp_path: Path) -> None:
    """Threads claiming at once. qdrant-client's local mode does not serialise threads as a
    server's shard serialises updates, so this race runs on SQLite and the fake; on Qdrant
    the claim is tested worker after worker above."""
    store = factory(tmp_path)
    for n in range(12):
        store.create(handoff(f"h{n:02d}", created=NOW + n))
    claimed: list[str] = []
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        for _ in range(6):
            claimed.extend(r.id for r in store.claim_due(NOW + 20, 60, 2))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [f"h{n:02d}" for n in range(12)]  # every one, none twice
