"""Chat requests in flight per served adapter name, so a retired version unloads only when idle.

The answering stream holds its entry with `using` from its first step to its last; a stream
that never starts never enters, so no entry can outlive its request.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    """Counts requests per served name."""

    def __init__(self) -> None:
        self._entries: dict[int, str] = {}
        self._ids = itertools.count(1)

    def enter(self, name: str) -> int:
        """Note a request using `name`; returns the token to pass to `leave`."""
        token = next(self._ids)
        self._entries[token] = name
        return token

    def leave(self, token: int | None) -> None:
        if token is not None:
            self._entries.pop(token, None)

    @contextmanager
    def using(self, name: str | None) -> Iterator[None]:
        """Counts one request using `name` for the block (None: the base model, not counted)."""
        token = self.enter(name) if name is not None else None
        try:
            yield
        finally:
            self.leave(token)

    def counts(self) -> Counter[str]:
        """Requests in flight per served name."""
        return Counter(self._entries.values())

    def count(self, name: str) -> int:
        return self.counts()[name]
