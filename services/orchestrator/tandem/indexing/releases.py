"""Serving releases: index jobs, the overview, a release's changes, rollback (admin API + CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tandem.errors import BadInput, Conflict, Forbidden, NotFound
from tandem.indexing.builds import live_build
from tandem.indexing.embed_process import EmbedderFactory, job_model
from tandem.indexing.history import load_history, rollback
from tandem.indexing.reindex import index_release
from tandem.jobs import Job, JobManager, ProgressFn
from tandem.rag.embedder import Embedder
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.state import ReleaseRecord


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
    stores: Stores,
    embedder: Embedder,
    folder: Path,
    release: str,
    settings: Settings,
    progress: ProgressFn,
    index_embedder: EmbedderFactory | None = None,
) -> dict[str, Any]:
    """Index one release and return its report (with the full what-changed lists).

    With `index_embedder`, the reading, chunking and embedding run in a child process it builds
    the embedder in (indexing/embed_process.py); else in this process with `embedder`.
    """
    alias, keep = settings.qdrant.alias, settings.qdrant.keep_releases
    with job_model(embedder, index_embedder, settings.index.embed_nice) as model:
        report = index_release(
            stores, embedder, folder, release, alias, progress, keep=keep, model=model
        )
    return report.as_dict()


def start_index_job(
    jobs: JobManager,
    stores: Stores,
    embedder: Embedder,
    settings: Settings,
    folder: Path,
    release: str,
    index_embedder: EmbedderFactory | None = None,
) -> Job:
    """Queue an index build; 409 while one runs here or on any replica."""
    if (build := live_build(stores.state)) is not None:
        raise Conflict(
            f"an index build is already running: {build['release']} ({build['collection']})"
        )
    return jobs.submit(
        "index",
        lambda progress: run_index(
            stores, embedder, folder, release, settings, progress, index_embedder
        ),
    )


def _entry_view(entry: ReleaseRecord, serving: str | None) -> dict[str, Any]:
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


def index_overview(stores: Stores, alias: str) -> dict[str, Any]:
    """The serving release (with what changed) and the releases kept for rollback, newest first."""
    history = load_history(stores, alias)
    serving = history.find(history.serving)
    kept = [_entry_view(e, history.serving) for e in reversed(history.entries)]
    build = live_build(stores.state)
    return {
        "alias": alias,
        "serving": {
            "collection": history.serving,
            "release": serving.release if serving else None,
            "changes": serving.changes if serving else None,
        },
        "kept": kept,
        "building": {k: build[k] for k in ("collection", "release", "started")} if build else None,
    }


def release_changes_of(
    stores: Stores, alias: str, release: str | None = None, collection: str | None = None
) -> dict[str, Any]:
    """The what-changed report of a kept release (default: the serving one)."""
    history = load_history(stores, alias)
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
    return {"release": entry.release, "collection": entry.collection, **entry.changes}


def rollback_release(
    stores: Stores, alias: str, collection: str | None = None, release: str | None = None
) -> dict[str, Any]:
    """Serve a kept release again; returns what serves now and what served before."""
    before = stores.docs.pointer_target(alias)
    target = rollback(stores, alias, collection, release)
    return {
        "serving": {"collection": target.collection, "release": target.release},
        "previous": {"collection": before},
    }
