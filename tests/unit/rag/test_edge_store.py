"""The embedded edge store's own promises: handle swaps under load, one opener, the pointer
file, and an old-layout data dir refused with a message."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.unit.rag.test_store_contract import EMBEDDER, filled

from tandem.errors import DependencyDown
from tandem.indexing.history import record_release
from tandem.rag.edge_store import EdgeDocStore
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.state.store import MemoryStateStore, ReleaseRecord
from tandem.storage import Stores, open_stores


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


def test_an_old_layout_data_dir_is_refused_and_left_alone(tmp_path: Path) -> None:
    old = tmp_path / "data" / "qdrant"
    old.mkdir(parents=True)
    (old / "meta.json").write_text('{"collections": {}, "aliases": {}}')

    with pytest.raises(DependencyDown, match="old embedded layout") as refused:
        open_stores(Settings(data_dir=tmp_path / "data"), 8)

    assert "mv " in str(refused.value) and "Nothing was changed" in str(refused.value)
    assert (old / "meta.json").is_file()
    assert not (tmp_path / "data" / "index").exists()
