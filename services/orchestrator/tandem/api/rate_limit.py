"""TANDEM_RATE_LIMIT_PER_MINUTE per key: in this process, or counted by every replica at once.

Embedded (one process): a token bucket per key in memory, no I/O. With the stores on a
Qdrant server (replicas behind a load balancer) the limit is a fixed one-minute window
counted in the shared store, so N replicas allow the configured rate in all, not N times it,
whichever replica each request reaches. bench/bench_rate_limit.py measures what the shared
count costs a request; deploy/README.md says why it was chosen over `rate / replicas`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Protocol

import anyio

from tandem.errors import RateLimited
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.rate_windows import HitCounter

WINDOW_S = 60


class Limiter(Protocol):
    async def admit(self, key: str) -> None:
        """Let a request of `key` through, or raise RateLimited (429 with Retry-After)."""
        ...


def _limited(per_minute: int, wait_s: float) -> RateLimited:
    return RateLimited(f"rate limit of {per_minute} requests/minute reached", math.ceil(wait_s))


class RateLimiter:
    """A token bucket per key, in this process (one replica, or `tandem up`)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        now = time.monotonic()
        tokens, stamp = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            raise _limited(int(self.capacity), (1.0 - tokens) / self.rate)
        self.buckets[key] = (tokens - 1.0, now)

    async def admit(self, key: str) -> None:
        self.check(key)


class SharedRateLimiter:
    """A fixed window per key, counted in the store every replica shares.

    Windows are wall-clock minutes, the same on every replica. A burst at a window's edge may
    get up to twice the rate in a minute (the end of one window and the start of the next).
    """

    def __init__(
        self, per_minute: int, counter: HitCounter, clock: Callable[[], float] = time.time
    ) -> None:
        self.per_minute = per_minute
        self.counter = counter
        self.clock = clock

    def check(self, key: str) -> None:
        now = self.clock()
        window = int(now // WINDOW_S)
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no key is ever stored
        if self.counter.hit(digest, window) > self.per_minute:
            raise _limited(self.per_minute, (window + 1) * WINDOW_S - now)

    async def admit(self, key: str) -> None:
        await anyio.to_thread.run_sync(self.check, key)  # a store round trip: off the loop


def rate_limiter(settings: Settings, stores: Stores) -> Limiter:
    """The shared window where the stores share a counter (server mode), else the bucket."""
    if stores.hits is None:
        return RateLimiter(settings.rate_limit_per_minute)
    return SharedRateLimiter(settings.rate_limit_per_minute, stores.hits)
