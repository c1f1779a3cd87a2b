"""Rollback, the bounded history, the build marker and the clean-up after a crashed build."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tandem.errors import Conflict, NotFound
from tandem.indexing.builds import BUILD_LEASE, build_marker, live_build
from tandem.indexing.history import load_history, recover_interrupted_builds, rollback
from tandem.indexing.reindex import index_release
from tandem.indexing.releases import index_overview, release_changes_of
from tandem.rag.embedder import HashEmbedder
from tandem.stores.deployment import Stores
from tandem.stores.state import ReleaseRecord

ALIAS = "docs"


def release(root: Path, name: str, limit: int) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "limits.md").write_text(f"# Limits\n\n{limit} requests per minute.\n")
    (folder / "faq.md").write_text("# FAQ\n\nAsk support.\n")
    return folder


@pytest.fixture
def three(store: Stores, tmp_path: Path) -> list[str]:
    """Releases v1, v2, v3 indexed in order; v3 serves."""
    return [
        index_release(
            store, HashEmbedder(), release(tmp_path, f"v{i}", 60 * i), f"v{i}", ALIAS
        ).collection
        for i in (1, 2, 3)
    ]


def test_rollback_steps_back_one_release_at_a_time(store: Stores, three: list[str]) -> None:
    assert rollback(store, ALIAS).collection == three[1]
    assert rollback(store, ALIAS).collection == three[0]
    with pytest.raises(Conflict, match="nothing to roll back to"):
        rollback(store, ALIAS)
    assert store.docs.pointer_target(ALIAS) == three[0]
    assert load_history(store, ALIAS).serving == three[0]


def test_rollback_to_a_named_release_or_collection(store: Stores, three: list[str]) -> None:
    assert rollback(store, ALIAS, release="v1").collection == three[0]
    assert rollback(store, ALIAS, collection=three[2]).release == "v3"
    with pytest.raises(Conflict, match="already serving"):
        rollback(store, ALIAS, collection=three[2])
    with pytest.raises(NotFound):
        rollback(store, ALIAS, release="v9")
    with pytest.raises(NotFound):
        rollback(store, ALIAS, collection="docs-nope")


def test_nothing_to_roll_back_to_with_one_release(store: Stores, tmp_path: Path) -> None:
    index_release(store, HashEmbedder(), release(tmp_path, "v1", 60), "v1", ALIAS)
    with pytest.raises(Conflict):
        rollback(store, ALIAS)


def test_rollback_waits_for_a_running_build(store: Stores, three: list[str]) -> None:
    with build_marker(store.state, "docs-v4-x", "v4"), pytest.raises(Conflict, match="running"):
        rollback(store, ALIAS)
    assert store.docs.pointer_target(ALIAS) == three[2]


def test_overview_and_changes_come_from_the_history(store: Stores, three: list[str]) -> None:
    overview = index_overview(store, ALIAS)
    assert overview["serving"]["release"] == "v3"
    assert [k["release"] for k in overview["kept"]] == ["v3", "v2", "v1"]
    assert overview["serving"]["changes"]["pages_changed"][0]["file"] == "limits.md"
    assert overview["kept"][0]["counts"]["reused"] == 1
    changes = release_changes_of(store, ALIAS, release="v2")
    assert changes["collection"] == three[1]
    assert changes["previous"]["release"] == "v1"
    assert changes["pages_changed"][0]["headings_changed"] == ["Limits"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_recovery_deletes_leftovers_of_a_dead_build_only(store: Stores, three: list[str]) -> None:
    store.docs.create_collection("docs-v4-crashed")
    store.docs.create_collection("unrelated")
    now = time.time()
    owner = {"host": socket.gethostname(), "pid": _dead_pid()}
    marker = {"collection": "docs-v4-crashed", "release": "v4", "owner": owner, "heartbeat": now}
    version = store.state.lease(BUILD_LEASE).version
    assert store.state.swap_lease(BUILD_LEASE, version, "dead-owner", now + 600, marker)

    assert recover_interrupted_builds(store, ALIAS) == ["docs-v4-crashed"]

    assert "unrelated" in store.docs.collections()
    assert set(three) <= set(store.docs.collections())
    assert store.state.lease(BUILD_LEASE).free


def test_recovery_spares_a_live_build_and_anything_an_alias_serves(
    store: Stores, three: list[str]
) -> None:
    store.docs.create_collection("docs-pinned")
    store.docs.move_pointer("other", "docs-pinned")
    with build_marker(store.state, "docs-v4-building", "v4"):
        store.docs.create_collection("docs-v4-building")
        assert recover_interrupted_builds(store, ALIAS) == []
    assert {"docs-pinned", "docs-v4-building"} <= set(store.docs.collections())


def test_a_build_on_another_host_is_live_until_its_heartbeat_goes_stale(store: Stores) -> None:
    marker = {"collection": "docs-x", "release": "x", "owner": {"host": "elsewhere", "pid": 1}}
    assert store.state.swap_lease(BUILD_LEASE, 0, "elsewhere:1", time.time() + 60, marker)
    assert live_build(store.state) is not None
    assert store.state.swap_lease(BUILD_LEASE, 1, "elsewhere:1", time.time() - 1, marker)
    assert live_build(store.state) is None


def test_a_second_build_is_refused_while_one_runs(store: Stores, tmp_path: Path) -> None:
    with build_marker(store.state, "docs-a", "a"), pytest.raises(Conflict, match="already running"):
        index_release(store, HashEmbedder(), release(tmp_path, "v1", 60), "v1", ALIAS)


def test_a_serving_collection_missing_from_history_is_adopted(store: Stores) -> None:
    store.docs.create_collection("docs-legacy")
    store.state.save_release(ReleaseRecord("docs-legacy", "v0", 1.0))  # published, not kept
    store.docs.move_pointer(ALIAS, "docs-legacy")

    assert recover_interrupted_builds(store, ALIAS) == []

    history = load_history(store, ALIAS)
    assert [(e.collection, e.release) for e in history.entries] == [("docs-legacy", "v0")]
    assert store.state.release_record("docs-legacy") == ReleaseRecord(
        "docs-legacy", "v0", 1.0, kept=True
    )


def test_an_unrecorded_serving_collection_is_adopted_as_unknown(store: Stores) -> None:
    store.docs.create_collection("docs-old")
    store.docs.move_pointer(ALIAS, "docs-old")

    assert recover_interrupted_builds(store, ALIAS) == []

    assert [(e.collection, e.release) for e in load_history(store, ALIAS).entries] == [
        ("docs-old", "unknown")
    ]
