"""Moves a data dir of the old embedded layout (qdrant-client local mode under `data/qdrant/`,
state as key-prefixed points in its `tandem_meta` collection) into the current one.

What moves: every collection an alias serves or the index history keeps (points and
vectors, unchanged), the aliases as pointer files, each collection's release record and
what-changed report, and the adapter slot pointers. The shards are built in
`index.migrating/` and renamed to `index/` only when complete; the old folder is then renamed
to `qdrant.migrated/` — moved aside, never deleted. A crash midway leaves the old layout as
it was and the next start migrates again from scratch.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from tandem.errors import DependencyDown
from tandem.stores.docs import DENSE
from tandem.stores.edge_docs import EdgeDocStore
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import ReleaseRecord, SlotPointer, StateStore

log = logging.getLogger("tandem.stores.deployment")
OLD_META = "tandem_meta"


def is_old_layout(folder: Path) -> bool:
    return (folder / "meta.json").is_file()


def _meta(old: QdrantDocStore) -> dict[str, Any]:
    if not old.client.collection_exists(OLD_META):
        return {}
    records, _ = old.client.scroll(OLD_META, limit=100_000, with_payload=True)
    return {str(r.payload["key"]): r.payload.get("value") for r in records if r.payload}


def _copy(old: QdrantDocStore, new: EdgeDocStore, collection: str) -> None:
    new.create_collection(collection)
    rows = [(c, v) for c, v in old.scroll_chunks(collection, with_vectors=True) if v]
    for start in range(0, len(rows), 256):
        part = rows[start : start + 256]
        new.upsert(collection, [c for c, _ in part], [v for _, v in part])
    new.finish(collection)


def _records(meta: dict[str, Any], kept: set[str]) -> list[ReleaseRecord]:
    records = []
    for name in sorted(kept):
        about = meta.get(f"collection:{name}") or {}
        report = dict(about.get("report") or {})
        records.append(
            ReleaseRecord(
                name,
                str(about.get("release", "unknown")),
                float(report.get("created", 0.0)),
                str(about.get("vector_space", "")),
                report,
                dict(meta.get(f"changes:{name}") or {}),
                kept=True,
            )
        )
    return records


def migrate_old_layout(old_path: Path, index_path: Path, state: StateStore) -> None:
    """Copy the old layout at `old_path` into `index_path` and `state` (see the module doc)."""
    from qdrant_client import QdrantClient

    try:
        client = QdrantClient(path=str(old_path))
    except RuntimeError as error:
        raise DependencyDown(f"{old_path} is in use by another process; stop it first") from error
    staging = index_path.with_name(index_path.name + ".migrating")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        old = QdrantDocStore(client, 0)
        meta = _meta(old)
        aliases = {a.alias_name: str(a.collection_name) for a in client.get_aliases().aliases}
        history = (meta.get("index_history") or {}).get("entries") or []
        kept = set(aliases.values()) | {str(e["collection"]) for e in history}
        kept &= set(old.collections())
        new = EdgeDocStore(staging, _dim(client, kept))
        for collection in sorted(kept):
            _copy(old, new, collection)
        for alias, collection in aliases.items():
            new.move_pointer(alias, collection)
        new.close()
        for record in _records(meta, kept):
            state.save_release(record)
        for key, value in meta.items():
            if key.startswith("adapter:") and value:
                state.save_slot_pointer(key.split(":", 1)[1], SlotPointer.from_dict(value))
    finally:
        client.close()
    staging.rename(index_path)
    old_path.rename(old_path.with_name(old_path.name + ".migrated"))
    log.warning(
        "migrated %s to %s (the old folder is kept as %s.migrated)",
        old_path,
        index_path,
        old_path.name,
    )


def _dim(client: Any, collections: set[str]) -> int:
    for name in collections:
        vectors = client.get_collection(name).config.params.vectors
        return int(vectors[DENSE].size)
    return 0
