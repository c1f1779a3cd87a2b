"""A swap lease in the shared metadata collection, so orchestrator replicas never swap at once."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tandem.rag.store import DocStore

SETTLE_S = 0.2


class MetaLease:
    """Best-effort mutual exclusion across replicas.

    Qdrant has no compare-and-set, so `acquire` writes its claim, waits `SETTLE_S` for a
    racing writer to land, and reads back: only the last writer keeps the lease. A crashed
    holder's lease expires after `ttl_s`.
    """

    def __init__(self, store: DocStore, key: str, ttl_s: float) -> None:
        self.store = store
        self.key = key
        self.ttl_s = ttl_s
        self.owner = uuid.uuid4().hex

    def holder(self) -> dict[str, Any] | None:
        """The live lease someone else holds, if any."""
        current = self.store.get_meta(self.key) or {}
        if current.get("owner") in {None, self.owner} or current.get("expires", 0) < time.time():
            return None
        return current

    def acquire(self, purpose: str, kind: str = "swap") -> dict[str, Any] | None:
        """Take the lease; returns None on success, else the holder's record."""
        if (other := self.holder()) is not None:
            return other
        claim = {
            "owner": self.owner,
            "purpose": purpose,
            "kind": kind,
            "expires": time.time() + self.ttl_s,
        }
        self.store.put_meta(self.key, claim)
        time.sleep(SETTLE_S)
        current = self.store.get_meta(self.key) or {}
        return None if current.get("owner") == self.owner else current

    def release(self) -> None:
        current = self.store.get_meta(self.key) or {}
        if current.get("owner") == self.owner:
            self.store.put_meta(self.key, {"owner": None, "expires": 0})
