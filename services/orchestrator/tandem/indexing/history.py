"""Which doc collections exist and why: the serving one, the ones kept for rollback, the build.

The serving pointer (alias or pointer file) is the truth for what serves; the release
records in the shared state explain it and bound what is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tandem.errors import Conflict, NotFound
from tandem.indexing.builds import DOC_PREFIX, live_build
from tandem.stores.deployment import Stores
from tandem.stores.state import ReleaseRecord


@dataclass
class History:
    serving: str | None
    entries: list[ReleaseRecord]  # kept releases, oldest first

    def find(self, collection: str | None) -> ReleaseRecord | None:
        return next((e for e in self.entries if e.collection == collection), None)


def load_history(stores: Stores, alias: str) -> History:
    """The kept collections and the one the pointer serves now.

    A serving collection that is not marked kept (a crash between moving the pointer and
    recording it, or one built before records existed) is adopted into the history.
    """
    records = stores.state.release_records()
    entries = [r for r in records if r.kept]
    serving = stores.docs.pointer_target(alias)
    if serving is not None and not any(e.collection == serving for e in entries):
        known = next((r for r in records if r.collection == serving), None)
        adopted = known or ReleaseRecord(serving, "unknown", 0.0)
        entries.append(dataclasses.replace(adopted, kept=True))
        entries.sort(key=lambda e: e.created)
    return History(serving, entries)


def record_release(stores: Stores, alias: str, record: ReleaseRecord, keep: int) -> list[str]:
    """After the pointer moved to `record`: keep it and the newest `keep` (at least 2),
    delete the others."""
    stores.state.save_release(dataclasses.replace(record, kept=True))
    history = load_history(stores, alias)
    keep = max(2, keep)  # never drop the release that served until now: queries may be on it
    dropped = [e.collection for e in history.entries[:-keep]]
    stores.state.drop_releases(dropped)
    existing = set(stores.docs.collections())
    for name in dropped:  # records first: a crash here leaves leftovers that recovery removes
        if name in existing:
            stores.docs.delete_collection(name)
    return dropped


def _pick(history: History, collection: str | None, release: str | None) -> ReleaseRecord:
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
    stores: Stores, alias: str, collection: str | None = None, release: str | None = None
) -> ReleaseRecord:
    """Serve a kept collection again (default: the one before the serving one), atomically."""
    if (build := live_build(stores.state)) is not None:
        raise Conflict(f"an index build is running ({build['collection']}); roll back after it")
    history = load_history(stores, alias)
    target = _pick(history, collection, release)
    if target.collection == history.serving:
        raise Conflict(f"{target.collection} ({target.release}) is already serving")
    if target.collection not in stores.docs.collections():
        raise Conflict(f"{target.collection} no longer exists; pick another kept release")
    stores.docs.move_pointer(alias, target.collection)
    return target


def recover_interrupted_builds(stores: Stores, alias: str = "docs") -> list[str]:
    """Delete doc collections that nothing serves, history does not keep, no live build owns.

    Call it at start-up (and before each build): a build killed mid-way leaves such a
    collection behind (and maybe an unpublished record). Served collections are never touched.
    """
    history = load_history(stores, alias)
    build = live_build(stores.state, clear_stale=True)
    keep = {e.collection for e in history.entries} | stores.docs.pointed_at()
    if build is not None:
        keep.add(str(build["collection"]))
    leftovers = [n for n in stores.docs.collections() if n.startswith(DOC_PREFIX) and n not in keep]
    for name in leftovers:
        stores.docs.delete_collection(name)
    unpublished = [r.collection for r in stores.state.release_records() if r.collection not in keep]
    stores.state.drop_releases(unpublished)
    serving = history.find(history.serving)
    if serving is not None and stores.state.release_record(serving.collection) != serving:
        stores.state.save_release(serving)  # adopt a serving collection not recorded as kept
    return leftovers
