"""Which doc collections exist and why: the serving one, the ones kept for rollback, the build.

Everything lives in the shared metadata collection, so every replica sees the same history.
The alias is the truth for what serves; history explains it and bounds what is kept.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tandem.errors import Conflict, NotFound
from tandem.indexing.builds import DOC_PREFIX, live_build
from tandem.rag.retriever import collection_meta_key
from tandem.rag.store import DocStore

HISTORY_KEY = "index_history"


@dataclass
class Entry:
    """One built, verified release collection."""

    collection: str
    release: str
    created: float = field(default_factory=time.time)
    report: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        return cls(
            collection=str(data["collection"]),
            release=str(data.get("release", "unknown")),
            created=float(data.get("created", 0.0)),
            report=dict(data.get("report") or {}),
        )


@dataclass
class History:
    serving: str | None
    entries: list[Entry]  # oldest first

    def find(self, collection: str | None) -> Entry | None:
        return next((e for e in self.entries if e.collection == collection), None)


def _adopt(store: DocStore, collection: str) -> Entry:
    """An entry for a serving collection that history lacks (built before history existed)."""
    meta = store.get_meta(collection_meta_key(collection)) or {}
    report = dict(meta.get("report") or {})
    release = str(meta.get("release", "unknown"))
    return Entry(collection, release, float(report.get("created", 0.0)), report)


def load_history(store: DocStore, alias: str) -> History:
    """The kept collections and the one the alias serves now."""
    raw = store.get_meta(HISTORY_KEY) or {}
    entries = [Entry.from_dict(item) for item in raw.get("entries", [])]
    serving = store.alias_target(alias)
    if serving is not None and not any(e.collection == serving for e in entries):
        entries.append(_adopt(store, serving))
        entries.sort(key=lambda e: e.created)
    return History(serving, entries)


def save_history(store: DocStore, history: History) -> None:
    store.put_meta(
        HISTORY_KEY,
        {"serving": history.serving, "entries": [e.as_dict() for e in history.entries]},
    )


def record_release(store: DocStore, alias: str, entry: Entry, keep: int) -> list[str]:
    """After the alias moved to `entry`: add it, keep the newest `keep` (at least 2), delete
    the others."""
    history = load_history(store, alias)
    entries = [e for e in history.entries if e.collection != entry.collection] + [entry]
    keep = max(2, keep)  # never drop the release that served until now: queries may be on it
    dropped = [e.collection for e in entries[:-keep]]
    save_history(store, History(serving=entry.collection, entries=entries[-keep:]))
    existing = set(store.collections())
    for name in dropped:  # history first: a crash here leaves leftovers that recovery removes
        if name in existing:
            store.delete_collection(name)
    return dropped


def _pick(history: History, collection: str | None, release: str | None) -> Entry:
    if collection is not None:
        entry = history.find(collection)
        if entry is None:
            raise NotFound(f"collection {collection!r} is not kept for rollback")
        return entry
    if release is not None:
        matches = [e for e in history.entries if e.release == release]
        if not matches:
            raise NotFound(f"release {release!r} is not kept for rollback")
        others = [e for e in matches if e.collection != history.serving]
        return (others or matches)[-1]
    position = next(
        (i for i, e in enumerate(history.entries) if e.collection == history.serving), None
    )
    if position is None or position == 0:
        raise Conflict("nothing to roll back to: no release older than the serving one is kept")
    return history.entries[position - 1]


def rollback(
    store: DocStore, alias: str, collection: str | None = None, release: str | None = None
) -> Entry:
    """Serve a kept collection again (default: the one before the serving one), atomically."""
    if (build := live_build(store)) is not None:
        raise Conflict(f"an index build is running ({build['collection']}); roll back after it")
    history = load_history(store, alias)
    target = _pick(history, collection, release)
    if target.collection == history.serving:
        raise Conflict(f"{target.collection} ({target.release}) is already serving")
    if target.collection not in store.collections():
        raise Conflict(f"{target.collection} no longer exists; pick another kept release")
    store.move_alias(alias, target.collection)
    history.serving = target.collection
    save_history(store, history)
    return target


def recover_interrupted_builds(store: DocStore, alias: str = "docs") -> list[str]:
    """Delete doc collections that nothing serves, history does not keep, no live build owns.

    Call it at start-up (and before each build): a build killed mid-way leaves such a
    collection behind. Collections that any alias points at are never touched.
    """
    history = load_history(store, alias)
    build = live_build(store, clear_stale=True)
    aliased = {a.collection_name for a in store.client.get_aliases().aliases}
    keep = {e.collection for e in history.entries} | aliased
    if build is not None:
        keep.add(str(build["collection"]))
    leftovers = [n for n in store.collections() if n.startswith(DOC_PREFIX) and n not in keep]
    for name in leftovers:
        store.delete_collection(name)
    if (
        history.serving is not None
        and (store.get_meta(HISTORY_KEY) or {}).get("serving") != history.serving
    ):
        save_history(store, history)  # adopt a serving collection history did not record yet
    return leftovers
