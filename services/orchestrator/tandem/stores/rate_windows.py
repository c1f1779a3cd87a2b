"""Requests counted per key in fixed time windows, in a store every replica shares.

The rate limit of several replicas (`tandem.api.rate_limit.SharedRateLimiter`) asks this
counter, so N replicas allow TANDEM_RATE_LIMIT_PER_MINUTE in all, not N times it. Keys
arrive hashed: no API key is ever stored.

`QdrantHitCounter` (in `tandem.stores.qdrant_records`) keeps one vector-less point per
request (its key and window number) and counts the window's points after writing its own:
Qdrant has no atomic increment, and a point per hit needs none. Two replicas counting at
once each see the other's hit, so a race can only refuse a request too many, never admit
one too many. Points of windows before the previous one are deleted as each replica moves
to a new window.
"""

from __future__ import annotations

import threading
from typing import Protocol


class HitCounter(Protocol):
    """Shared request counts per key and window."""

    def hit(self, key: str, window: int) -> int:
        """Count one request of `key` in window number `window`; the window's count with it."""
        ...


class MemoryHitCounter:
    """The in-memory fake of `HitCounter` (one process), for unit tests."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window: int) -> int:
        with self._lock:
            self.counts = {k: n for k, n in self.counts.items() if k[1] >= window - 1}
            count = self.counts.get((key, window), 0) + 1
            self.counts[key, window] = count
            return count
