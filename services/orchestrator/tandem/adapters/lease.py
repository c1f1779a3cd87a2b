"""The adapter swap lease in the shared state, so orchestrator replicas never swap at once."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tandem.stores.state import StateStore


class SwapLease:
    """Mutual exclusion across replicas by compare-and-set on a lease record.

    `acquire` succeeds only if the lease it read (free, expired or already its own) is
    still the stored version when it writes; a crashed holder's lease expires after `ttl_s`.
    """

    def __init__(self, state: StateStore, key: str, ttl_s: float) -> None:
        self.state = state
        self.key = key
        self.ttl_s = ttl_s
        self.owner = uuid.uuid4().hex

    def holder(self) -> dict[str, Any] | None:
        """The live lease someone else holds, if any."""
        current = self.state.lease(self.key)
        if current.owner == self.owner or not current.live():
            return None
        return current.data

    def acquire(self, purpose: str, kind: str = "swap") -> dict[str, Any] | None:
        """Take the lease; returns None on success, else the holder's record."""
        current = self.state.lease(self.key)
        if current.owner != self.owner and current.live():
            return current.data
        claim = {"owner": self.owner, "purpose": purpose, "kind": kind}
        expires = time.time() + self.ttl_s
        if self.state.swap_lease(self.key, current.version, self.owner, expires, claim):
            return None
        return self.state.lease(self.key).data or {"purpose": "unknown"}

    def release(self) -> None:
        current = self.state.lease(self.key)
        if current.owner == self.owner:
            self.state.swap_lease(self.key, current.version, "", 0.0, {})
