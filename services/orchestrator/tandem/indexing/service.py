"""What the admin API and the CLI call to index a release and to inspect the index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tandem.errors import BadInput, Forbidden
from tandem.indexing.reindex import index_release
from tandem.jobs import ProgressFn
from tandem.rag.embedder import Embedder
from tandem.rag.retriever import collection_meta_key
from tandem.rag.store import DocStore


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
) -> dict[str, Any]:
    """Index one release and return its report as plain data."""
    return index_release(store, embedder, folder, release, alias, progress).as_dict()


def index_overview(store: DocStore, alias: str) -> dict[str, Any]:
    """The serving release and collection, and every doc collection kept for rollback."""
    serving = store.alias_target(alias)
    kept = []
    for name in sorted(store.collections()):
        if not name.startswith("docs-"):
            continue
        meta = store.get_meta(collection_meta_key(name)) or {}
        kept.append(
            {
                "collection": name,
                "release": meta.get("release"),
                "serving": name == serving,
                "report": meta.get("report"),
            }
        )
    release = next((k["release"] for k in kept if k["serving"]), None)
    return {"alias": alias, "serving": {"collection": serving, "release": release}, "kept": kept}
