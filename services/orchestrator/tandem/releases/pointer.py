"""Which release pair answers a turn: one read of the shared pair pointer, canary-aware.

This is what the chat turn calls (once per turn, in its plan stage). The contract:

- `ReleasePointer.serving(sticky_key)` returns the `ServingPair` a conversation gets now —
  release id, docs collection, docs release name and adapter label — taken from ONE read of
  the `PairPointer` record, so the collection and the adapter always belong to the same pair,
  even while a promote or rollback is under way (a promote is one compare-and-set of that
  record). With a canary, a conversation whose `sticky_key` falls in the canary's share gets
  the canary pair, and keeps getting it for as long as the canary runs (the same key always
  lands on the same side). It returns None when no release pair was ever promoted: the turn
  then answers as before (the `docs` alias and the slot's active adapter).
- The turn retrieves from `pair.collection` (`Retriever.retrieve(..., collection=)`) and
  generates with `pair.adapter` when the request asks for the pair's slot or for the default
  slot (`"none"` still means the base model, with the pair's docs). It reports
  `release=pair.release` beside `index` and `adapter`.
- Fast and thread-safe: the pointer is read at most once per `ttl_s` per process (a lock
  guards the refresh; readers in between share the same immutable record), so a turn costs
  a dict lookup and a hash. Every answer within `ttl_s` of a promote names either pair,
  never a mix: both pairs' adapters stay loaded and both collections stay kept meanwhile.

`FixedPair` answers every turn with one pair: the admin candidate route and the release gate
use it to ask a pair that does not serve (yet) through the real chat path.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tandem.stores.state import PairPointer, StateStore

SHARE_BUCKETS = 10_000


@dataclass(frozen=True)
class ServingPair:
    """A release pair as a turn uses it."""

    release: str
    collection: str
    docs_release: str
    adapter: str | None  # "support@v4"; None: the base model
    canary: bool = False  # this conversation is in the canary's share

    @property
    def slot(self) -> str | None:
        return self.adapter.partition("@")[0] if self.adapter else None

    @property
    def version(self) -> str | None:
        return self.adapter.partition("@")[2] if self.adapter else None

    @classmethod
    def of(cls, entry: dict[str, Any], canary: bool = False) -> ServingPair:
        """From a pair pointer entry (`ReleasePair.entry()`)."""
        return cls(
            release=str(entry["release"]),
            collection=str(entry["collection"]),
            docs_release=str(entry.get("docs_release") or entry["release"]),
            adapter=entry.get("adapter"),
            canary=canary,
        )


class PairSource(Protocol):
    """What a chat turn asks for its pair."""

    def serving(self, sticky_key: str | None) -> ServingPair | None: ...


def in_canary_share(sticky_key: str, release: str, share: float) -> bool:
    """Whether a conversation belongs to a release canary's share (stable per key)."""
    digest = hashlib.sha256(f"release:{release}:{sticky_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SHARE_BUCKETS < round(share * SHARE_BUCKETS)


def route(pointer: PairPointer, sticky_key: str | None) -> ServingPair | None:
    """The pair `pointer` gives a conversation: the canary for its share, else the serving one."""
    canary = pointer.canary
    if canary and sticky_key and in_canary_share(sticky_key, canary["release"], canary["share"]):
        return ServingPair.of(canary, canary=True)
    return ServingPair.of(pointer.serving) if pointer.serving else None


class ReleasePointer:
    """The shared pair pointer, read at most once per `ttl_s` by this process."""

    def __init__(
        self, state: StateStore, ttl_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.state = state
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._read: tuple[float, PairPointer] | None = None

    def pointer(self, fresh: bool = False) -> PairPointer:
        """The pointer record (cached for `ttl_s`; `fresh` reads it now)."""
        read = self._read
        now = self.clock()
        if read is not None and not fresh and now - read[0] < self.ttl_s:
            return read[1]
        with self._lock:
            read = self._read
            if read is None or fresh or now - read[0] >= self.ttl_s:
                read = (self.clock(), self.state.pair_pointer())
                self._read = read
            return read[1]

    def serving(self, sticky_key: str | None) -> ServingPair | None:
        """The pair this conversation gets now (see the module docstring for the contract)."""
        return route(self.pointer(), sticky_key)

    def forget(self) -> None:
        """Read the pointer again on the next call (after this process changed it)."""
        with self._lock:
            self._read = None


class FixedPair:
    """Every turn gets `pair` (the candidate route and the release gate)."""

    def __init__(self, pair: ServingPair) -> None:
        self.pair = pair

    def serving(self, sticky_key: str | None) -> ServingPair:
        return self.pair
