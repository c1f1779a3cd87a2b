"""Shared state as typed records behind one small Protocol (and an in-memory fake for tests).

What replicas must agree on lives here, never in the doc store and never in one process:
each adapter slot's pointer (active, canary, previous, history), background jobs, the
record of every published doc collection (release, report, what changed) and leases.
A lease is the only record written with compare-and-set (`swap_lease`): an index build
claim and the adapter swap lease are both leases. Versions only grow, a released lease
stays as a free row, so a stale `expected` version can never match again (no ABA).

Backends: `SqliteStateStore` (one machine, `tandem.stores.sqlite_state`) and
`QdrantStateStore` (replicas sharing a Qdrant server, `tandem.stores.qdrant_state`).
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SlotPointer:
    """Which version of an adapter slot serves, the canary beside it, and how it got there."""

    active: str | None = None
    canary: dict[str, Any] | None = None  # {"version": "v3", "percent": 10}
    previous: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotPointer:
        return cls(
            active=data.get("active"),
            canary=data.get("canary"),
            previous=data.get("previous"),
            history=list(data.get("history") or []),
        )


@dataclass(frozen=True)
class JobRecord:
    """A background job's state as any replica reports it."""

    id: str
    kind: str
    status: str
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = 0.0


@dataclass(frozen=True)
class ReleaseRecord:
    """A built doc collection: its release, report and what changed against the one before.

    `kept` turns true once the collection has served (it is then in the rollback history);
    a record that never served belongs to a build that did not publish.
    """

    collection: str
    release: str
    created: float
    vector_space: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, Any] = field(default_factory=dict)
    kept: bool = False


@dataclass(frozen=True)
class LeaseRecord:
    """A named lease: free when `owner` is empty; `version` grows with every write."""

    name: str
    version: int = 0
    owner: str = ""
    expires: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def free(self) -> bool:
        return not self.owner

    def live(self, now: float | None = None) -> bool:
        return not self.free and self.expires > (time.time() if now is None else now)


class StateStore(Protocol):
    """The shared state of a Tandem deployment."""

    def slot_pointer(self, slot: str) -> SlotPointer: ...

    def save_slot_pointer(self, slot: str, pointer: SlotPointer) -> None: ...

    def job(self, job_id: str) -> JobRecord | None: ...

    def save_job(self, job: JobRecord) -> None: ...

    def release_record(self, collection: str) -> ReleaseRecord | None: ...

    def release_records(self) -> list[ReleaseRecord]:
        """Every record, oldest first."""
        ...

    def save_release(self, record: ReleaseRecord) -> None: ...

    def drop_releases(self, collections: list[str]) -> None: ...

    def lease(self, name: str) -> LeaseRecord:
        """The lease as stored (version 0 and free when never taken)."""
        ...

    def swap_lease(
        self, name: str, expected: int, owner: str, expires: float, data: dict[str, Any]
    ) -> bool:
        """Compare-and-set: write version `expected + 1` only if the stored version is
        `expected`; True when this write won. `owner=""` frees the lease."""
        ...


class MemoryStateStore:
    """The in-memory fake of `StateStore` for unit tests (one process, thread-safe)."""

    def __init__(self) -> None:
        self._slots: dict[str, SlotPointer] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._releases: dict[str, ReleaseRecord] = {}
        self._leases: dict[str, LeaseRecord] = {}
        self._lock = threading.Lock()

    def slot_pointer(self, slot: str) -> SlotPointer:
        return SlotPointer.from_dict(self._slots.get(slot, SlotPointer()).as_dict())

    def save_slot_pointer(self, slot: str, pointer: SlotPointer) -> None:
        self._slots[slot] = SlotPointer.from_dict(pointer.as_dict())

    def job(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    def save_job(self, job: JobRecord) -> None:
        self._jobs[job.id] = copy.deepcopy(job)

    def release_record(self, collection: str) -> ReleaseRecord | None:
        return self._releases.get(collection)

    def release_records(self) -> list[ReleaseRecord]:
        return sorted(self._releases.values(), key=lambda r: r.created)

    def save_release(self, record: ReleaseRecord) -> None:
        self._releases[record.collection] = copy.deepcopy(record)

    def drop_releases(self, collections: list[str]) -> None:
        for name in collections:
            self._releases.pop(name, None)

    def lease(self, name: str) -> LeaseRecord:
        return self._leases.get(name, LeaseRecord(name))

    def swap_lease(
        self, name: str, expected: int, owner: str, expires: float, data: dict[str, Any]
    ) -> bool:
        with self._lock:
            if self.lease(name).version != expected:
                return False
            self._leases[name] = LeaseRecord(name, expected + 1, owner, expires, dict(data))
            return True
