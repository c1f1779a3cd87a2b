"""`StateStore` in a Qdrant collection, for orchestrator replicas that share a Qdrant server.

Each record is one vector-less point (`kind`, `key`, `value`). Leases and the release pair
pointer use Qdrant's conditional upsert as compare-and-set: a point is overwritten only when
its payload matches `update_filter` (`version == expected`), and created only under
`update_mode=insert_only`. Qdrant applies a shard's updates one at a time, so of two
racing writers exactly one matches; each write carries a random token and the writer
reads the point back to learn whether its write is the one stored. In a cluster these
writes use strong ordering (through the shard's permanent leader) and reads a majority.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from qdrant_client import QdrantClient, models

from tandem.stores.state import (
    JobRecord,
    LeaseRecord,
    PairPointer,
    PairStats,
    ReleasePair,
    ReleaseRecord,
    SlotPointer,
)

STATE_COLLECTION = "tandem_state"
_NAMESPACE = uuid.UUID("0b8f6a1e-3c2d-4e5f-8a9b-7c6d5e4f3a21")
# In a cluster, writes go through the shard's permanent leader in one order, and reads
# ask a majority of replicas: a lease's compare-and-set then sees every earlier write.
STRONG = models.WriteOrdering.STRONG
MAJORITY = models.ReadConsistencyType.MAJORITY
POINTER_KEY = "serving"  # the one pair pointer


def _id(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}\x00{key}"))


def _is(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _kind_is(kind: str, **more: str) -> models.Filter:
    return models.Filter(must=[_is("kind", kind), *(_is(k, v) for k, v in more.items())])


class QdrantStateStore:
    """Shared state for several replicas, in the Qdrant they already share."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        if not client.collection_exists(STATE_COLLECTION):
            client.create_collection(STATE_COLLECTION, vectors_config={})

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        records = self.client.retrieve(
            STATE_COLLECTION, ids=[_id(kind, key)], with_payload=True, consistency=MAJORITY
        )
        return dict(records[0].payload or {}) if records else None

    def _put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        payload = {"kind": kind, "key": key, "value": value}
        point = models.PointStruct(id=_id(kind, key), vector={}, payload=payload)
        self.client.upsert(STATE_COLLECTION, points=[point], wait=True)

    def slot_pointer(self, slot: str) -> SlotPointer:
        stored = self._get("slot", slot)
        return SlotPointer.from_dict(stored["value"]) if stored else SlotPointer()

    def save_slot_pointer(self, slot: str, pointer: SlotPointer) -> None:
        self._put("slot", slot, pointer.as_dict())

    def job(self, job_id: str) -> JobRecord | None:
        stored = self._get("job", job_id)
        return JobRecord(**stored["value"]) if stored else None

    def save_job(self, job: JobRecord) -> None:
        self._put("job", job.id, dataclasses.asdict(job))

    def release_record(self, collection: str) -> ReleaseRecord | None:
        stored = self._get("release", collection)
        return ReleaseRecord(**stored["value"]) if stored else None

    def _scroll(self, condition: models.Filter) -> list[dict[str, Any]]:
        """The stored values of every point matching `condition`."""
        found: list[dict[str, Any]] = []
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                STATE_COLLECTION, condition, limit=256, offset=offset
            )
            found += [(r.payload or {})["value"] for r in records]
            if offset is None:
                return found

    def release_records(self) -> list[ReleaseRecord]:
        found = [ReleaseRecord(**value) for value in self._scroll(_kind_is("release"))]
        return sorted(found, key=lambda r: (r.created, r.collection))

    def save_release(self, record: ReleaseRecord) -> None:
        self._put("release", record.collection, dataclasses.asdict(record))

    def _drop(self, kind: str, keys: list[str]) -> None:
        """Delete these records; none is a no-op (Qdrant refuses an empty update request)."""
        if not keys:
            return
        ids: list[models.ExtendedPointId] = [_id(kind, key) for key in keys]
        self.client.delete(STATE_COLLECTION, points_selector=ids, wait=True)

    def drop_releases(self, collections: list[str]) -> None:
        self._drop("release", collections)

    def lease(self, name: str) -> LeaseRecord:
        stored = self._get("lease", name)
        if stored is None:
            return LeaseRecord(name)
        value = stored["value"]
        return LeaseRecord(
            name, int(stored["version"]), value["owner"], value["expires"], value["data"]
        )

    def swap_lease(
        self, name: str, expected: int, owner: str, expires: float, data: dict[str, Any]
    ) -> bool:
        value = {"owner": owner, "expires": expires, "data": data}
        return self._swap("lease", name, expected, value)

    def _swap(self, kind: str, key: str, expected: int, value: dict[str, Any]) -> bool:
        """Write `value` as version `expected + 1` only if version `expected` is stored."""
        token = uuid.uuid4().hex
        payload = {"kind": kind, "key": key, "value": value, "version": expected + 1}
        point = models.PointStruct(
            id=_id(kind, key), vector={}, payload={**payload, "token": token}
        )
        condition: dict[str, Any] = {"update_mode": models.UpdateMode.INSERT_ONLY}
        if expected > 0:
            version = models.FieldCondition(key="version", match=models.MatchValue(value=expected))
            condition = {"update_filter": models.Filter(must=[version])}
        self.client.upsert(STATE_COLLECTION, [point], wait=True, ordering=STRONG, **condition)
        stored = self._get(kind, key)
        return stored is not None and stored.get("token") == token

    def release_pair(self, release: str) -> ReleasePair | None:
        stored = self._get("pair", release)
        return ReleasePair.from_dict(stored["value"]) if stored else None

    def release_pairs(self) -> list[ReleasePair]:
        found = [ReleasePair.from_dict(value) for value in self._scroll(_kind_is("pair"))]
        return sorted(found, key=lambda p: (p.created, p.release))

    def save_release_pair(self, pair: ReleasePair) -> None:
        self._put("pair", pair.release, pair.as_dict())

    def drop_release_pairs(self, releases: list[str]) -> None:
        self._drop("pair", releases)

    def pair_pointer(self) -> PairPointer:
        stored = self._get("pair_pointer", POINTER_KEY)
        if stored is None:
            return PairPointer()
        return PairPointer.from_dict(stored["value"], int(stored["version"]))

    def swap_pair_pointer(self, expected: int, pointer: PairPointer) -> bool:
        return self._swap("pair_pointer", POINTER_KEY, expected, pointer.value())

    def save_pair_stats(self, stats: PairStats) -> None:
        key = f"{stats.window}\x00{stats.release}\x00{stats.replica}"
        payload = {"kind": "pair_stats", "key": key, "window": stats.window}
        point = models.PointStruct(
            id=_id("pair_stats", key),
            vector={},
            payload={**payload, "value": dataclasses.asdict(stats)},
        )
        self.client.upsert(STATE_COLLECTION, points=[point], wait=True)

    def pair_stats(self, window: str) -> list[PairStats]:
        found = [PairStats(**v) for v in self._scroll(_kind_is("pair_stats", window=window))]
        return sorted(found, key=lambda s: (s.release, s.replica))
