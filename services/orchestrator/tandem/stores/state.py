"""Shared state as typed records behind one small Protocol (and an in-memory fake for tests).

What replicas must agree on lives here, never in the doc store and never in one process:
each adapter slot's pointer (active, canary, previous, history), background jobs, the
record of every published doc collection (release, report, what changed), leases, and
the release pairs (`ReleasePair`: a docs collection + an adapter version, gated as one) with
the one `PairPointer` that says which pair serves. Leases and the pair pointer are the
records written with compare-and-set (`swap_lease`, `swap_pair_pointer`): an index build
claim and the adapter swap lease are both leases; a promote is one pair-pointer write.
Versions only grow, a released lease stays as a free row, so a stale `expected` version can
never match again (no ABA).

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


@dataclass(frozen=True)
class ReleasePair:
    """A release: one docs collection and one adapter version, built and gated as a unit.

    `status`: building -> evaluating -> gated (`gate["passed"]` says how it went), or error,
    or replaced (a newer candidate took its place before it served). Whether it serves is
    the `PairPointer`'s to say, never this record's.
    """

    release: str
    collection: str = ""  # empty until its docs are built
    docs_release: str = ""
    adapter: str | None = None  # "support@v4"; None: the base model
    status: str = "building"
    created: float = 0.0
    job: str | None = None
    qa: str | None = None  # the QA file its gate asked
    gate: dict[str, Any] = field(default_factory=dict)  # thresholds, passed, violations, figures
    forced: list[dict[str, Any]] = field(default_factory=list)  # promoted past a failed gate
    changes: dict[str, Any] = field(default_factory=dict)  # what changed against serving
    error: str | None = None
    owner: dict[str, Any] = field(default_factory=dict)  # host and pid of its plan job

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleasePair:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: copy.deepcopy(v) for k, v in data.items() if k in known})

    def entry(self) -> dict[str, Any]:
        """What the pair pointer holds of this pair: enough to answer with it in one read."""
        return {
            "release": self.release,
            "collection": self.collection,
            "docs_release": self.docs_release,
            "adapter": self.adapter,
        }


@dataclass(frozen=True)
class PairPointer:
    """Which release pair serves, the canary beside it, the pairs kept for rollback, and the
    journal of promotes and rollbacks (`pending`: the one under way, if any).

    `serving`, `canary` and each `kept` entry are `ReleasePair.entry()` dicts (the canary's
    also has `share` and `since`), so one read of this record names a whole pair.
    """

    version: int = 0
    serving: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    kept: list[dict[str, Any]] = field(default_factory=list)  # newest last
    pending: dict[str, Any] | None = None
    journal: list[dict[str, Any]] = field(default_factory=list)  # newest last

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], version: int) -> PairPointer:
        return cls(
            version=version,
            serving=copy.deepcopy(data.get("serving")),
            canary=copy.deepcopy(data.get("canary")),
            kept=copy.deepcopy(list(data.get("kept") or [])),
            pending=copy.deepcopy(data.get("pending")),
            journal=copy.deepcopy(list(data.get("journal") or [])),
        )

    def value(self) -> dict[str, Any]:
        """The stored value (the version is stored beside it)."""
        data = self.as_dict()
        del data["version"]
        return data


@dataclass(frozen=True)
class PairStats:
    """What one replica counted for one pair in one window (a canary's comparison)."""

    window: str
    release: str
    replica: str
    answers: int = 0
    declined: int = 0
    suggested: int = 0
    errors: int = 0
    updated: float = 0.0


def release_held_adapters(state: StateStore) -> set[str]:
    """Adapter versions ("slot@version") release pairs need loaded: the serving pair's, the
    canary's, and those of candidates whose gate is running."""
    pointer = state.pair_pointer()
    held = {e["adapter"] for e in (pointer.serving, pointer.canary) if e and e.get("adapter")}
    held |= {p.adapter for p in state.release_pairs() if p.status == "evaluating" and p.adapter}
    return held


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

    def drop_releases(self, collections: list[str]) -> None:
        """Forget these release records (unknown ones and an empty list: nothing to do)."""
        ...

    def lease(self, name: str) -> LeaseRecord:
        """The lease as stored (version 0 and free when never taken)."""
        ...

    def swap_lease(
        self, name: str, expected: int, owner: str, expires: float, data: dict[str, Any]
    ) -> bool:
        """Compare-and-set: write version `expected + 1` only if the stored version is
        `expected`; True when this write won. `owner=""` frees the lease."""
        ...

    def release_pair(self, release: str) -> ReleasePair | None: ...

    def release_pairs(self) -> list[ReleasePair]:
        """Every pair record, oldest first."""
        ...

    def save_release_pair(self, pair: ReleasePair) -> None: ...

    def drop_release_pairs(self, releases: list[str]) -> None:
        """Forget these release pairs (unknown ones and an empty list: nothing to do)."""
        ...

    def pair_pointer(self) -> PairPointer:
        """The pointer as stored (version 0 and empty when never written)."""
        ...

    def swap_pair_pointer(self, expected: int, pointer: PairPointer) -> bool:
        """Compare-and-set: store `pointer` as version `expected + 1` only if the stored
        version is `expected`; True when this write won."""
        ...

    def save_pair_stats(self, stats: PairStats) -> None: ...

    def pair_stats(self, window: str) -> list[PairStats]:
        """Every replica's counts for every pair in `window`."""
        ...


class MemoryStateStore:
    """The in-memory fake of `StateStore` for unit tests (one process, thread-safe)."""

    def __init__(self) -> None:
        self._slots: dict[str, SlotPointer] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._releases: dict[str, ReleaseRecord] = {}
        self._leases: dict[str, LeaseRecord] = {}
        self._pairs: dict[str, ReleasePair] = {}
        self._pointer = PairPointer()
        self._stats: dict[tuple[str, str, str], PairStats] = {}
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

    def release_pair(self, release: str) -> ReleasePair | None:
        pair = self._pairs.get(release)
        return None if pair is None else ReleasePair.from_dict(pair.as_dict())

    def release_pairs(self) -> list[ReleasePair]:
        pairs = sorted(self._pairs.values(), key=lambda p: (p.created, p.release))
        return [ReleasePair.from_dict(p.as_dict()) for p in pairs]

    def save_release_pair(self, pair: ReleasePair) -> None:
        self._pairs[pair.release] = ReleasePair.from_dict(pair.as_dict())

    def drop_release_pairs(self, releases: list[str]) -> None:
        for release in releases:
            self._pairs.pop(release, None)

    def pair_pointer(self) -> PairPointer:
        with self._lock:
            return PairPointer.from_dict(self._pointer.value(), self._pointer.version)

    def swap_pair_pointer(self, expected: int, pointer: PairPointer) -> bool:
        with self._lock:
            if self._pointer.version != expected:
                return False
            self._pointer = PairPointer.from_dict(pointer.value(), expected + 1)
            return True

    def save_pair_stats(self, stats: PairStats) -> None:
        self._stats[(stats.window, stats.release, stats.replica)] = stats

    def pair_stats(self, window: str) -> list[PairStats]:
        return sorted(
            (s for key, s in self._stats.items() if key[0] == window),
            key=lambda s: (s.release, s.replica),
        )
