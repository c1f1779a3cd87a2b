"""The rate limit: a bucket in one process, a window counted by every replica in server mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tandem.api.rate_limit import RateLimiter, SharedRateLimiter, rate_limiter
from tandem.errors import RateLimited
from tandem.settings import Settings
from tandem.stores.deployment import open_stores, qdrant_stores
from tandem.stores.rate_windows import MemoryHitCounter


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # a window starts here (a multiple of 60)

    def __call__(self) -> float:
        return self.now


def test_replicas_share_one_limit_per_key() -> None:
    counter, clock = MemoryHitCounter(), Clock()
    replica_a, replica_b = (SharedRateLimiter(3, counter, clock) for _ in range(2))
    replica_a.check("key-1")
    replica_b.check("key-1")
    replica_a.check("key-1")
    replica_b.check("key-2")  # another key
    clock.now += 45
    with pytest.raises(RateLimited) as caught:
        replica_b.check("key-1")  # 3 per minute in all, whichever replica is asked
    assert caught.value.status == 429 and caught.value.retry_after == 15  # the window's end
    clock.now += 15
    replica_b.check("key-1")  # the next window


def test_no_key_reaches_the_store() -> None:
    counter = MemoryHitCounter()
    SharedRateLimiter(5, counter, Clock()).check("secret-chat-key")
    ((stored, _),) = counter.counts
    assert "secret" not in stored and len(stored) == 32


def test_admit_runs_the_shared_count_off_the_event_loop() -> None:
    limiter = SharedRateLimiter(1, MemoryHitCounter(), Clock())
    asyncio.run(limiter.admit("k"))
    with pytest.raises(RateLimited):
        asyncio.run(limiter.admit("k"))


def test_the_bucket_serves_one_process_and_the_window_a_shared_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_per_minute=7)
    client = QdrantClient(":memory:")
    shared = rate_limiter(settings, qdrant_stores(client, settings, 8))
    assert isinstance(shared, SharedRateLimiter) and shared.per_minute == 7
    client.close()
    embedded = open_stores(settings, 8)
    assert isinstance(rate_limiter(settings, embedded), RateLimiter)
    embedded.close()
