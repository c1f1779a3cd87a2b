"""The shared rate-limit counter: per key, per window, shared by every replica on the store;
run over the in-memory fake and Qdrant (qdrant-client's local mode)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient

from tandem.stores.qdrant_records import HITS, QdrantHitCounter
from tandem.stores.rate_windows import HitCounter, MemoryHitCounter


@pytest.fixture(params=["memory", "qdrant"])
def counters(request: pytest.FixtureRequest) -> Iterator[tuple[HitCounter, HitCounter]]:
    """Two replicas' counters on one store."""
    if request.param == "memory":
        shared = MemoryHitCounter()
        yield shared, shared
        return
    client = QdrantClient(":memory:")
    yield QdrantHitCounter(client), QdrantHitCounter(client)
    client.close()


def test_counts_are_per_key_and_window_and_shared(counters: tuple[HitCounter, HitCounter]) -> None:
    a, b = counters
    assert [a.hit("k1", 100), b.hit("k1", 100), a.hit("k1", 100)] == [1, 2, 3]
    assert b.hit("k2", 100) == 1  # another key has its own count
    assert a.hit("k1", 101) == 1  # a new window starts from one
    assert b.hit("k1", 101) == 2


def test_qdrant_keeps_only_the_current_and_the_previous_window() -> None:
    client = QdrantClient(":memory:")
    counter = QdrantHitCounter(client)
    for window in (100, 100, 101, 102):
        counter.hit("k", window)
    remaining = client.scroll(HITS, limit=100)[0]
    assert sorted((p.payload or {})["window"] for p in remaining) == [101, 102]
    client.close()
