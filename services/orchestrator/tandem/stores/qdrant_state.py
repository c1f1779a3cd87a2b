"""`StateStore` in a Qdrant collection, for orchestrator replicas that share a Qdrant server.

Each record is one vector-less point (`kind`, `key`, `value`). Leases use Qdrant's
conditional upsert as compare-and-set: a point is overwritten only when its payload
matches `update_filter` (`version == expected`), and created only under
`update_mode=insert_only`. Qdrant applies a shard's updates one at a time, so of two
racing writers exactly one matches; each write carries a random token and the writer
reads the point back to learn whether its write is the one stored. In a cluster the
lease writes use strong ordering (through the shard's permanent leader) and reads a majority.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from qdrant_client import QdrantClient, models

from tandem.stores.state import JobRecord, LeaseRecord, ReleaseRecord, SlotPointer

STATE_COLLECTION = "tandem_state"
_NAMESPACE = uuid.UUID("0b8f6a1e-3c2d-4e5f-8a9b-7c6d5e4f3a21")
# In a cluster, writes go through the shard's permanent leader in one order, and reads
# ask a majority of replicas: a lease's compare-and-set then sees every earlier write.
STRONG = models.WriteOrdering.STRONG
MAJORITY = models.ReadConsistencyType.MAJORITY


def _id(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}\x00{key}"))


def _kind_is(kind: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="kind", match=models.MatchValue(value=kind))]
    )


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

    def release_records(self) -> list[ReleaseRecord]:
        found: list[ReleaseRecord] = []
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                STATE_COLLECTION, _kind_is("release"), limit=256, offset=offset
            )
            found += [ReleaseRecord(**(r.payload or {})["value"]) for r in records]
            if offset is None:
                return sorted(found, key=lambda r: (r.created, r.collection))

    def save_release(self, record: ReleaseRecord) -> None:
        self._put("release", record.collection, dataclasses.asdict(record))

    def drop_releases(self, collections: list[str]) -> None:
        ids: list[models.ExtendedPointId] = [_id("release", c) for c in collections]
        self.client.delete(STATE_COLLECTION, points_selector=ids, wait=True)

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
        token = uuid.uuid4().hex
        value = {"owner": owner, "expires": expires, "data": data}
        payload = {"kind": "lease", "key": name, "value": value, "version": expected + 1}
        point = models.PointStruct(
            id=_id("lease", name), vector={}, payload={**payload, "token": token}
        )
        condition: dict[str, Any] = {"update_mode": models.UpdateMode.INSERT_ONLY}
        if expected > 0:
            version = models.FieldCondition(key="version", match=models.MatchValue(value=expected))
            condition = {"update_filter": models.Filter(must=[version])}
        self.client.upsert(STATE_COLLECTION, [point], wait=True, ordering=STRONG, **condition)
        stored = self._get("lease", name)
        return stored is not None and stored.get("token") == token
