"""Chat requests in flight per served adapter name, so a retired version unloads only when idle."""

from __future__ import annotations

import itertools
import time
from collections import Counter


class InFlight:
    """Counts requests per served name; entries older than `max_age_s` count as gone.

    The age bound covers a stream whose client vanished before the body started (its
    generator never runs, so it never says it is done).
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._entries: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count(1)

    def enter(self, name: str) -> int:
        """Note a request using `name`; returns the token to pass to `leave`."""
        token = next(self._ids)
        self._entries[token] = (name, time.monotonic())
        return token

    def leave(self, token: int | None) -> None:
        if token is not None:
            self._entries.pop(token, None)

    def counts(self) -> Counter[str]:
        """Requests in flight per served name."""
        cutoff = time.monotonic() - self.max_age_s
        for token, (_, started) in list(self._entries.items()):
            if started < cutoff:
                self._entries.pop(token, None)
        return Counter(name for name, _ in self._entries.values())

    def count(self, name: str) -> int:
        return self.counts()[name]
