"""One contract for every `StateStore`: the fake, SQLite, and Qdrant (qdrant-client local mode,
which runs the server's conditional-upsert semantics in-process); plus a two-process CAS."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from tests.conftest import ROOT

from tandem.stores.qdrant_state import QdrantStateStore
from tandem.stores.sqlite import StateDatabase
from tandem.stores.sqlite_state import SqliteStateStore
from tandem.stores.state import (
    JobRecord,
    MemoryStateStore,
    PairPointer,
    PairStats,
    ReleasePair,
    ReleaseRecord,
    SlotPointer,
    StateStore,
    release_held_adapters,
)


@pytest.fixture(params=["memory", "sqlite", "qdrant-local"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
    elif request.param == "sqlite":
        yield SqliteStateStore(StateDatabase(tmp_path / "state.sqlite3"))
    else:
        client = QdrantClient(":memory:")
        yield QdrantStateStore(client)
        client.close()


def test_slot_pointers_round_trip(state: StateStore) -> None:
    assert state.slot_pointer("support") == SlotPointer()
    pointer = SlotPointer("v2", {"version": "v3", "percent": 10}, "v1", [{"action": "canary"}])
    state.save_slot_pointer("support", pointer)
    assert state.slot_pointer("support") == pointer
    assert state.slot_pointer("billing") == SlotPointer()


def test_jobs_round_trip(state: StateStore) -> None:
    assert state.job("index-x") is None
    job = JobRecord("index-x", "index", "running", {"stage": "embed", "done": 3}, None, None, 5.0)
    state.save_job(job)
    state.save_job(JobRecord("index-x", "index", "succeeded", {}, {"chunks": 4}, None, 5.0))
    assert state.job("index-x") == JobRecord(
        "index-x", "index", "succeeded", {}, {"chunks": 4}, None, 5.0
    )


def test_release_records_are_ordered_and_dropped(state: StateStore) -> None:
    newer = ReleaseRecord("docs-b", "v2", 2.0, "minilm", {"chunks": 3}, {"summary": {}}, True)
    state.save_release(newer)
    state.save_release(ReleaseRecord("docs-a", "v1", 1.0))
    assert [r.collection for r in state.release_records()] == ["docs-a", "docs-b"]
    assert state.release_record("docs-b") == newer
    state.drop_releases(["docs-a", "docs-missing"])
    assert state.release_records() == [newer]


def test_dropping_nothing_changes_nothing(state: StateStore) -> None:
    # start-up recovery drops its (usually empty) list of unpublished records every time;
    # Qdrant refuses an empty delete ("Empty update request"), so the store must skip it
    state.save_release(ReleaseRecord("docs-a", "v1", 1.0))
    state.save_release_pair(ReleasePair("v1", "docs-a", "v1", status="gated", created=1.0))
    state.drop_releases([])
    state.drop_release_pairs([])
    assert [r.collection for r in state.release_records()] == ["docs-a"]
    assert [p.release for p in state.release_pairs()] == ["v1"]


def test_a_lease_is_compare_and_set(state: StateStore) -> None:
    assert state.lease("swap").version == 0 and state.lease("swap").free
    assert state.swap_lease("swap", 0, "a", 9e9, {"purpose": "x"})
    assert not state.swap_lease("swap", 0, "b", 9e9, {})  # b read version 0: too late
    held = state.lease("swap")
    assert (held.version, held.owner, held.data, held.live()) == (1, "a", {"purpose": "x"}, True)
    assert state.swap_lease("swap", 1, "", 0.0, {})  # freed: the version still grows
    assert state.lease("swap").free and state.lease("swap").version == 2
    assert not state.swap_lease("swap", 1, "c", 9e9, {})  # a stale version never matches


def test_racing_threads_win_once_per_version(state: StateStore) -> None:
    wins: list[str] = []
    start = threading.Barrier(8)

    def claim(owner: str) -> None:
        start.wait()
        if state.swap_lease("race", 0, owner, 9e9, {}):
            wins.append(owner)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1 and state.lease("race").owner == wins[0]


def test_release_pairs_round_trip_oldest_first_and_drop(state: StateStore) -> None:
    assert state.release_pair("v4.2") is None and state.release_pairs() == []
    gated = ReleasePair(
        "v4.2", "docs-v4.2-1", "v4.2", "support@v2", "gated", 2.0, "release-1", "eval/qa.jsonl",
        {"passed": False, "violations": ["hybrid format compliance 0.5 is below 0.8"]},
        [{"by": "ops", "at": "now"}], {"summary": {"pages_added": 1}},
    )  # fmt: skip
    state.save_release_pair(gated)
    state.save_release_pair(ReleasePair("v4.1", status="error", created=1.0, error="boom"))
    assert state.release_pair("v4.2") == gated
    assert [p.release for p in state.release_pairs()] == ["v4.1", "v4.2"]
    state.save_release_pair(ReleasePair("v4.1", status="replaced", created=1.0))
    assert state.release_pair("v4.1") == ReleasePair("v4.1", status="replaced", created=1.0)
    state.drop_release_pairs(["v4.1", "v9"])
    assert state.release_pairs() == [gated]


def test_the_pair_pointer_is_compare_and_set(state: StateStore) -> None:
    assert state.pair_pointer() == PairPointer()
    serving = {"release": "a", "collection": "docs-a", "docs_release": "a", "adapter": "s@v1"}
    first = PairPointer(serving=serving, journal=[{"op": "promote", "to": "a"}])
    assert state.swap_pair_pointer(0, first)
    assert not state.swap_pair_pointer(0, PairPointer())  # read version 0: too late
    stored = state.pair_pointer()
    assert stored.version == 1 and stored.serving == serving and stored.journal == first.journal
    canary = {**serving, "release": "b", "share": 0.1, "since": 5.0}
    second = PairPointer(9, serving, canary, [serving], {"op": "promote", "step": "begun"})
    assert state.swap_pair_pointer(1, second)  # the version passed in is not the one stored
    assert state.pair_pointer() == PairPointer(2, serving, canary, [serving], second.pending)
    assert not state.swap_pair_pointer(1, first)


def test_racing_pair_pointer_writers_win_once_per_version(state: StateStore) -> None:
    wins: list[int] = []
    start = threading.Barrier(6)

    def write(n: int) -> None:
        start.wait()
        entry = {"release": f"r{n}", "collection": "c", "docs_release": "r", "adapter": None}
        if state.swap_pair_pointer(0, PairPointer(serving=entry)):
            wins.append(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert state.pair_pointer().serving == {
        "release": f"r{wins[0]}", "collection": "c", "docs_release": "r", "adapter": None
    }  # fmt: skip


def test_pair_stats_are_kept_per_window_release_and_replica(state: StateStore) -> None:
    state.save_pair_stats(PairStats("w1", "b", "host:1", 3, 1, 0, 1, 9.0))
    state.save_pair_stats(PairStats("w1", "a", "host:1", 5, 0, 2, 0, 9.0))
    state.save_pair_stats(PairStats("w2", "a", "host:1", 7))
    state.save_pair_stats(PairStats("w1", "a", "host:1", 6, 0, 2, 0, 10.0))  # replaces
    state.save_pair_stats(PairStats("w1", "a", "host:2", 1))
    assert state.pair_stats("w1") == [
        PairStats("w1", "a", "host:1", 6, 0, 2, 0, 10.0),
        PairStats("w1", "a", "host:2", 1),
        PairStats("w1", "b", "host:1", 3, 1, 0, 1, 9.0),
    ]
    assert state.pair_stats("none") == []


def test_release_pairs_hold_their_adapters(state: StateStore) -> None:
    state.save_release_pair(ReleasePair("c1", adapter="support@v3", status="evaluating"))
    state.save_release_pair(ReleasePair("c2", adapter="support@v4", status="gated"))
    serving = {"release": "s", "collection": "x", "docs_release": "s", "adapter": "support@v1"}
    canary = {**serving, "release": "k", "adapter": "support@v2", "share": 0.5}
    assert state.swap_pair_pointer(0, PairPointer(serving=serving, canary=canary))
    assert release_held_adapters(state) == {"support@v1", "support@v2", "support@v3"}


# Each process takes the lease 40 times, and while it holds it appends "enter"/"exit" lines
# to a shared log; mutual exclusion means the log never shows two enters in a row.
WORKER = """
import os, sys, time
from pathlib import Path
from tandem.stores.sqlite import StateDatabase
from tandem.stores.sqlite_state import SqliteStateStore
from tandem.adapters.lease import SwapLease

db, log = Path(sys.argv[1]), Path(sys.argv[2])
lease = SwapLease(SqliteStateStore(StateDatabase(db)), "adapter-swap:support", ttl_s=30)
taken = 0
while taken < 40:
    if lease.acquire("test") is not None:
        continue
    with log.open("a") as out:
        out.write(f"enter {os.getpid()}\\n")
    time.sleep(0.001)
    with log.open("a") as out:
        out.write(f"exit {os.getpid()}\\n")
    lease.release()
    taken += 1
"""


def test_two_processes_never_hold_the_sqlite_lease_at_once(tmp_path: Path) -> None:
    db, log = tmp_path / "state.sqlite3", tmp_path / "log"
    SqliteStateStore(StateDatabase(db))  # schema in place before the race
    env = {"PYTHONPATH": str(ROOT / "services/orchestrator"), "PATH": ""}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(db), str(log)], env=env)
        for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]

    lines = log.read_text().splitlines()
    assert len(lines) == 160
    assert len({line.split()[1] for line in lines}) == 2  # both processes took turns
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter") and leave == enter.replace("enter", "exit")
