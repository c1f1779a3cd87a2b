"""Serving releases: index jobs, the overview, a release's changes, rollback (admin API + CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tandem.errors import BadInput, Conflict, Forbidden, NotFound
from tandem.indexing.builds import live_build
from tandem.indexing.history import Entry, load_history, rollback
from tandem.indexing.reindex import index_release
from tandem.jobs import Job, JobManager, ProgressFn
from tandem.rag.embedder import Embedder
from tandem.rag.store import DocStore
from tandem.settings import Settings


def allowed_index_path(path: str, roots: list[str]) -> Path:
    """Resolve `path` and refuse anything outside TANDEM_INDEX_ROOTS (symlinks included)."""
    resolved = Path(path).expanduser().resolve()
    allowed = [Path(root).expanduser().resolve() for root in roots]
    if not any(resolved == root or root in resolved.parents for root in allowed):
        raise Forbidden(
            f"{path} is outside the folders the admin API may read "
            f"(TANDEM_INDEX_ROOTS: {', '.join(str(r) for r in allowed)})"
        )
    if not resolved.is_dir():
        raise BadInput(f"{path} is not a folder on the server")
    return resolved


def run_index(
    store: DocStore,
    embedder: Embedder,
    folder: Path,
    release: str,
    alias: str,
    progress: ProgressFn,
    keep: int = 3,
) -> dict[str, Any]:
    """Index one release and return its report (with the full what-changed lists)."""
    return index_release(store, embedder, folder, release, alias, progress, keep=keep).as_dict()


def start_index_job(
    jobs: JobManager,
    store: DocStore,
    embedder: Embedder,
    settings: Settings,
    folder: Path,
    release: str,
) -> Job:
    """Queue an index build; 409 while one runs here or on any replica."""
    if (build := live_build(store)) is not None:
        raise Conflict(
            f"an index build is already running: {build['release']} ({build['collection']})"
        )
    alias, keep = settings.qdrant.alias, settings.qdrant.keep_releases
    return jobs.submit(
        "index",
        lambda progress: run_index(store, embedder, folder, release, alias, progress, keep),
    )


def _entry_view(entry: Entry, serving: str | None) -> dict[str, Any]:
    report = entry.report
    return {
        "collection": entry.collection,
        "release": entry.release,
        "created": entry.created,
        "serving": entry.collection == serving,
        "counts": {k: report.get(k) for k in ("pages", "chunks", "embedded", "reused", "removed")},
        "changes": (report.get("changes") or {}).get("summary"),
        "previous": report.get("previous"),
        "seconds": report.get("seconds"),
    }


def index_overview(store: DocStore, alias: str) -> dict[str, Any]:
    """The serving release (with what changed) and the releases kept for rollback, newest first."""
    history = load_history(store, alias)
    serving = history.find(history.serving)
    kept = [_entry_view(e, history.serving) for e in reversed(history.entries)]
    build = live_build(store)
    return {
        "alias": alias,
        "serving": {
            "collection": history.serving,
            "release": serving.release if serving else None,
            "changes": store.get_meta(f"changes:{history.serving}") if serving else None,
        },
        "kept": kept,
        "building": {k: build[k] for k in ("collection", "release", "started")} if build else None,
    }


def release_changes_of(
    store: DocStore, alias: str, release: str | None = None, collection: str | None = None
) -> dict[str, Any]:
    """The what-changed report of a kept release (default: the serving one)."""
    history = load_history(store, alias)
    if collection is None and release is None:
        collection = history.serving
    matches = [
        e
        for e in history.entries
        if e.collection == collection or (collection is None and e.release == release)
    ]
    if not matches:
        raise NotFound(f"no kept release matches {collection or release!r}")
    entry = matches[-1]
    changes = store.get_meta(f"changes:{entry.collection}") or {}
    return {"release": entry.release, "collection": entry.collection, **changes}


def rollback_release(
    store: DocStore, alias: str, collection: str | None = None, release: str | None = None
) -> dict[str, Any]:
    """Serve a kept release again; returns what serves now and what served before."""
    before = store.alias_target(alias)
    target = rollback(store, alias, collection, release)
    return {
        "serving": {"collection": target.collection, "release": target.release},
        "previous": {"collection": before},
    }
