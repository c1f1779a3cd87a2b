"""The embedded edge store's own promises: handle swaps under load, one opener, the pointer
file, and a data dir of the old layout migrated (or refused with a message)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models
from tests.unit.rag.test_store_contract import EMBEDDER, filled

from tandem.documents import Chunk
from tandem.errors import DependencyDown
from tandem.indexing.history import record_release
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.stores.deployment import Stores, open_stores
from tandem.stores.edge_docs import EdgeDocStore
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import MemoryStateStore, ReleaseRecord


def test_pointer_moves_and_deletes_under_concurrent_queries_fail_nothing(tmp_path: Path) -> None:
    """Queries run on 4 threads while builds publish and old shards are closed and deleted."""
    stores = Stores(EdgeDocStore(tmp_path / "index", EMBEDDER.dim), MemoryStateStore())
    retriever = Retriever(stores, EMBEDDER, "docs", prefetch=10)
    filled(stores.docs, "docs-0", "r0")
    stores.docs.move_pointer("docs", "docs-0")
    record_release(stores, "docs", ReleaseRecord("docs-0", "r0", 0.0), keep=2)
    stop, failures, answered = threading.Event(), [], [0]

    def query() -> None:
        while not stop.is_set():
            try:
                result = retriever.retrieve("docker compose", top_k=3)
                assert len(result.chunks) == 3
                answered[0] += 1
            except Exception as error:  # noqa: BLE001 - every failure is what we count
                failures.append(repr(error))

    threads = [threading.Thread(target=query) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for n in range(1, 16):
            name = f"docs-{n}"
            filled(stores.docs, name, f"r{n}")
            stores.docs.move_pointer("docs", name)
            record = ReleaseRecord(name, f"r{n}", float(n))
            record_release(stores, "docs", record, keep=2)  # closes and deletes docs-{n-2}
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    stores.close()

    assert failures == []
    assert answered[0] > 15
    assert sorted(p.name for p in (tmp_path / "index" / "shards").iterdir()) == [
        "docs-14",
        "docs-15",
    ]


def test_a_second_opener_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = EdgeDocStore(tmp_path / "index", 8)
    with pytest.raises(DependencyDown, match="in use by another process"):
        EdgeDocStore(tmp_path / "index", 8)
    first.close()
    EdgeDocStore(tmp_path / "index", 8).close()


def test_the_pointer_file_is_replaced_whole(tmp_path: Path) -> None:
    store = EdgeDocStore(tmp_path / "index", EMBEDDER.dim)
    filled(store, "docs-a")
    store.move_pointer("docs", "docs-a")
    store.close()

    reopened = EdgeDocStore(tmp_path / "index", EMBEDDER.dim)  # another process, later
    assert reopened.pointer_target("docs") == "docs-a"
    assert [p.name for p in (tmp_path / "index" / "pointers").iterdir()] == ["docs.json"]
    reopened.close()


def old_layout(data: Path) -> list[Chunk]:
    """A data dir as the previous version wrote it: qdrant-client local mode, alias `docs`,
    state as key-prefixed points in `tandem_meta`."""
    client = QdrantClient(path=str(data / "qdrant"))
    old = QdrantDocStore(client, EMBEDDER.dim)
    items = filled(old, "docs-v1-old", "v1")
    filled(old, "docs-v0-old", "v0")
    old.move_pointer("docs", "docs-v1-old")
    client.create_collection("tandem_meta", vectors_config={})
    meta = {
        "collection:docs-v1-old": {"release": "v1", "vector_space": "hash", "report": {}},
        "changes:docs-v1-old": {"summary": {"pages_added": 6}},
        "index_history": {"entries": [{"collection": "docs-v1-old", "release": "v1"}]},
        "adapter:support": {"active": "v2", "canary": None, "previous": "v1", "history": []},
    }
    points = [
        models.PointStruct(id=n + 1, vector={}, payload={"key": k, "value": v})
        for n, (k, v) in enumerate(meta.items())
    ]
    client.upsert("tandem_meta", points=points)
    client.close()
    return items


def test_an_old_layout_data_dir_is_migrated_and_kept_aside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    items = old_layout(data)

    stores = open_stores(Settings(data_dir=data), EMBEDDER.dim)
    try:
        assert stores.docs.pointer_target("docs") == "docs-v1-old"
        assert stores.docs.collections() == ["docs-v1-old"]  # served or kept only
        assert stores.docs.count("docs-v1-old") == len(items)
        record = stores.state.release_record("docs-v1-old")
        assert record is not None and (record.release, record.kept) == ("v1", True)
        assert record.changes == {"summary": {"pages_added": 6}}
        assert stores.state.slot_pointer("support").active == "v2"
        retriever = Retriever(stores, EMBEDDER, "docs", prefetch=10)
        assert retriever.retrieve("docker compose", 3).index.release == "v1"
    finally:
        stores.close()
    assert (data / "qdrant.migrated" / "meta.json").is_file()  # moved aside, not deleted
    assert not (data / "qdrant").exists()


def test_old_and_new_layouts_side_by_side_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old_layout(data)
    (data / "index").mkdir()

    with pytest.raises(DependencyDown, match="old embedded layout") as refused:
        open_stores(Settings(data_dir=data), 8)

    assert "nothing was changed" in str(refused.value) and "mv " in str(refused.value)
    assert (data / "qdrant" / "meta.json").is_file()
