"""`ReleasePointer.serving`: one read names a whole pair, canary-aware and sticky; the pure
pointer transitions of promote, canary and rollback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tandem.errors import Conflict
from tandem.releases.pointer import FixedPair, ReleasePointer, ServingPair, in_canary_share
from tandem.releases.transitions import (
    CANARY,
    PROMOTE,
    ROLLBACK,
    abort,
    begin,
    finish,
    switch,
    window,
)
from tandem.stores.sqlite import StateDatabase
from tandem.stores.sqlite_state import SqliteStateStore
from tandem.stores.state import MemoryStateStore, PairPointer


def entry(release: str, adapter: str | None = "support@v1") -> dict[str, object]:
    return {"release": release, "collection": f"docs-{release}", "docs_release": release,
            "adapter": adapter}  # fmt: skip


def promoted(pointer: PairPointer, release: str, adapter: str = "support@v1") -> PairPointer:
    return finish(switch(begin(pointer, PROMOTE, entry(release, adapter), "ops"), 3), "done")


def test_no_pair_ever_promoted_means_none() -> None:
    assert ReleasePointer(MemoryStateStore()).serving("id:1") is None


def test_the_serving_pair_comes_whole_from_one_record() -> None:
    state = MemoryStateStore()
    assert state.swap_pair_pointer(0, promoted(PairPointer(), "v4.2", "support@v3"))
    pair = ReleasePointer(state).serving(None)
    assert pair == ServingPair("v4.2", "docs-v4.2", "v4.2", "support@v3")
    assert (pair.slot, pair.version, pair.canary) == ("support", "v3", False)
    assert FixedPair(pair).serving("anything") is pair


def test_a_canary_takes_its_share_of_conversations_and_keeps_them() -> None:
    state = MemoryStateStore()
    serving = promoted(PairPointer(), "v1")
    canary = switch(begin(serving, CANARY, entry("v2", "support@v2"), "ops", share=0.25), 3)
    assert state.swap_pair_pointer(0, finish(canary, "done"))
    pointer = ReleasePointer(state)
    keys = [f"id:conversation-{n}" for n in range(2000)]
    first = {key: pointer.serving(key) for key in keys}
    in_canary = [k for k, p in first.items() if p is not None and p.release == "v2"]
    assert 0.2 < len(in_canary) / len(keys) < 0.3
    assert all(first[k] is not None and first[k].canary for k in in_canary)  # type: ignore[union-attr]
    assert all(pointer.serving(key) == first[key] for key in keys)  # sticky
    assert pointer.serving(None) == ServingPair("v1", "docs-v1", "v1", "support@v1")
    assert in_canary_share("id:x", "v2", 1.0) and not in_canary_share("id:x", "v2", 0.0)


def test_the_pointer_is_read_once_per_ttl(tmp_path: Path) -> None:
    state = SqliteStateStore(StateDatabase(tmp_path / "state.sqlite3"))
    now = [0.0]
    pointer = ReleasePointer(state, ttl_s=1.0, clock=lambda: now[0])
    assert state.swap_pair_pointer(0, promoted(PairPointer(), "a"))
    assert pointer.serving(None).release == "a"  # type: ignore[union-attr]
    assert state.swap_pair_pointer(1, promoted(state.pair_pointer(), "b"))
    now[0] = 0.5
    assert pointer.serving(None).release == "a"  # type: ignore[union-attr]
    now[0] = 1.5
    assert pointer.serving(None).release == "b"  # type: ignore[union-attr]
    assert state.swap_pair_pointer(2, promoted(state.pair_pointer(), "c"))
    pointer.forget()
    assert pointer.serving(None).release == "c"  # type: ignore[union-attr]


def test_readers_never_see_half_a_pair_while_promotes_run(tmp_path: Path) -> None:
    """Four threads read with no cache while another promotes 60 times: every pair they get
    is one that was promoted whole (collection, docs release and adapter of one release)."""
    state = SqliteStateStore(StateDatabase(tmp_path / "state.sqlite3"))
    assert state.swap_pair_pointer(0, promoted(PairPointer(), "r0", "support@v0"))
    pointer = ReleasePointer(state, ttl_s=0.0)
    seen: list[ServingPair | None] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(pointer.serving("id:reader"))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for n in range(1, 61):
        current = state.pair_pointer()
        change = begin(current, PROMOTE, entry(f"r{n}", f"support@v{n}"), "ops")
        assert state.swap_pair_pointer(current.version, change)
        assert state.swap_pair_pointer(current.version + 1, switch(change, 3))
        assert state.swap_pair_pointer(current.version + 2, finish(switch(change, 3), "done"))
    stop.set()
    for reader in readers:
        reader.join()
    assert len(seen) > 60
    for pair in seen:
        assert pair is not None
        n = pair.release[1:]
        assert (pair.collection, pair.docs_release, pair.adapter) == (
            f"docs-r{n}", f"r{n}", f"support@v{n}"
        )  # fmt: skip


def test_promote_keeps_the_old_pair_and_rollback_returns_to_it() -> None:
    first = promoted(PairPointer(), "a")
    second = promoted(first, "b", "support@v2")
    assert second.serving is not None and second.serving["release"] == "b"
    assert [e["release"] for e in second.kept] == ["a"]
    assert [j["op"] for j in second.journal] == [PROMOTE, PROMOTE]
    back = switch(begin(second, ROLLBACK, second.kept[-1], "ops"), 3)
    assert back.serving is not None and back.serving["release"] == "a" and back.kept == []
    assert back.pending is not None and back.pending["step"] == "switched"
    assert finish(back, "done").journal[-1]["from"] == "b"


def test_a_rollback_during_a_canary_ends_the_canary_only() -> None:
    serving = promoted(PairPointer(), "a")
    canary = finish(switch(begin(serving, CANARY, entry("b"), "ops", share=0.1), 3), "done")
    assert canary.canary is not None and window(canary) == f"b@{canary.canary['since']}"
    ended = switch(begin(canary, ROLLBACK, None, "watch", reason="errors"), 3)
    assert ended.canary is None and ended.serving == canary.serving
    assert finish(ended, "done").journal[-1]["reason"] == "errors"
    full = switch(begin(canary, PROMOTE, entry("b"), "ops"), 3)
    assert full.canary is None and full.serving is not None and full.serving["release"] == "b"


def test_one_change_at_a_time_and_an_unswitched_one_aborts_cleanly() -> None:
    started = begin(PairPointer(), PROMOTE, entry("a"), "ops")
    with pytest.raises(Conflict):
        begin(started, PROMOTE, entry("b"), "ops")
    undone = abort(started, "interrupted before the switch")
    assert undone.serving is None and undone.pending is None
    assert undone.journal[-1]["step"] == "aborted" and "target" not in undone.journal[-1]
    with pytest.raises(Conflict):
        switch(finish(switch(started, 3), "done"), 3)


def test_kept_pairs_are_bounded() -> None:
    pointer = PairPointer()
    for n in range(6):
        pointer = promoted(pointer, f"r{n}")
    assert [e["release"] for e in pointer.kept] == ["r2", "r3", "r4"]
