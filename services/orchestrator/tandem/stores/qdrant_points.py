"""Vector-less points in Qdrant: what the shared record collections (answers, handoffs,
rate-limit hits) have in common — ids, creation, paging, conditions, a compare-and-set.

A compare-and-set works as the state store's leases do: every write of a record carries a
fresh random `token`; a conditional write is a `set_payload` whose points selector is a
filter (the point's id *and* the token the writer read), which Qdrant applies one update
at a time per shard, and the writer reads the point back to learn whether its write is the
one stored (the update's result does not say). In a cluster those writes go through the
shard's permanent leader (`ordering=strong`) and reads ask a majority of replicas.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from qdrant_client import QdrantClient, models

from tandem.errors import Conflict

_NAMESPACE = uuid.UUID("5d2e7c1a-94b3-4f0e-8c6d-1a3b5e7f9d24")
STRONG = models.WriteOrdering.STRONG
MAJORITY = models.ReadConsistencyType.MAJORITY
KEYWORD = models.PayloadSchemaType.KEYWORD
FLOAT = models.PayloadSchemaType.FLOAT
INTEGER = models.PayloadSchemaType.INTEGER
BOOL = models.PayloadSchemaType.BOOL
PAGE = 256
MAX_TRIES = 16  # compare-and-set rounds before a write gives up (each lost round: a rival won)
Payload = dict[str, Any]


def point_id(collection: str, key: str) -> str:
    """The point of record `key` in `collection` (a UUID, as Qdrant wants one)."""
    return str(uuid.uuid5(_NAMESPACE, f"{collection}\x00{key}"))


def new_token() -> str:
    return uuid.uuid4().hex


def ensure_collection(
    client: QdrantClient, name: str, indexes: Mapping[str, models.PayloadSchemaType]
) -> None:
    """Create the payload-only collection `name` and its payload indexes unless it exists.

    Replicas starting together may race to create it: the loser finds it there afterwards.
    """
    if client.collection_exists(name):
        return
    try:
        client.create_collection(name, vectors_config={})
    except Exception:
        if not client.collection_exists(name):
            raise
        return
    with warnings.catch_warnings():  # local mode says its payload indexes change nothing
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for field, schema in indexes.items():
            client.create_payload_index(name, field, schema, wait=True)


def is_(key: str, value: str | int | bool) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def within(
    key: str, gte: float | None = None, lte: float | None = None, lt: float | None = None
) -> models.FieldCondition:
    return models.FieldCondition(key=key, range=models.Range(gte=gte, lte=lte, lt=lt))


def matching(
    equal: Mapping[str, str | None], since_key: str, since: float | None
) -> list[models.Condition]:
    """An admin filter's conditions: each field equal to its value where one is given, and
    `since_key` at or after `since` where that is given."""
    found: list[models.Condition] = [is_(k, v) for k, v in equal.items() if v is not None]
    if since is not None:
        found.append(within(since_key, gte=since))
    return found


def empty(key: str) -> models.IsEmptyCondition:
    """The field is missing, null or an empty list."""
    return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))


def has_id(*ids: str) -> models.HasIdCondition:
    return models.HasIdCondition(has_id=list(ids))


def read(client: QdrantClient, collection: str, pid: str) -> dict[str, Any] | None:
    """The point's payload as a majority of replicas hold it; None when there is none."""
    found = client.retrieve(collection, ids=[pid], with_payload=True, consistency=MAJORITY)
    return dict(found[0].payload or {}) if found else None


def read_many(client: QdrantClient, collection: str, ids: list[str]) -> list[dict[str, Any]]:
    found = client.retrieve(collection, ids=ids, with_payload=True, consistency=MAJORITY)
    return [dict(point.payload or {}) for point in found]


def scroll_all(client: QdrantClient, collection: str, where: models.Filter) -> list[dict[str, Any]]:
    """Every payload matching `where`, page by page."""
    found: list[dict[str, Any]] = []
    offset: Any = None
    while True:
        points, offset = client.scroll(
            collection, where, limit=PAGE, offset=offset, consistency=MAJORITY
        )
        found += [dict(point.payload or {}) for point in points]
        if offset is None:
            return found


def insert(client: QdrantClient, collection: str, pid: str, payload: dict[str, Any]) -> None:
    """Write a new record (an existing point of that id is left as it is)."""
    point = models.PointStruct(id=pid, vector={}, payload={**payload, "token": new_token()})
    client.upsert(
        collection, [point], wait=True, ordering=STRONG, update_mode=models.UpdateMode.INSERT_ONLY
    )


def delete_where(client: QdrantClient, collection: str, where: models.Filter) -> None:
    client.delete(collection, models.FilterSelector(filter=where), wait=True)


def swap(
    client: QdrantClient,
    collection: str,
    pid: str,
    seen: dict[str, Any],
    changes: dict[str, Any],
) -> dict[str, Any] | None:
    """Compare-and-set: write `changes` only if the point still holds the token it had when
    `seen` was read; the stored payload when this write won, else None."""
    token = new_token()
    only_if = models.Filter(must=[has_id(pid), is_("token", seen["token"])])
    client.set_payload(
        collection, {**changes, "token": token}, points=only_if, wait=True, ordering=STRONG
    )
    stored = read(client, collection, pid)
    return stored if stored is not None and stored.get("token") == token else None


def update(
    client: QdrantClient,
    collection: str,
    pid: str,
    read_it: Callable[[], Payload],
    change: Callable[[Payload], Payload | None],
    what: str,
) -> Payload:
    """Read the record, `change` it (None: leave it as read) and compare-and-set the change,
    again from a fresh read whenever another writer came first; the record as stored."""
    for _ in range(MAX_TRIES):
        seen = read_it()
        changes = change(seen)
        if changes is None:
            return seen
        stored = swap(client, collection, pid, seen, changes)
        if stored is not None:
            return stored
    raise Conflict(f"{what} kept changing while this write tried {MAX_TRIES} times; try again")
