"""Index one docs release blue/green: build a new collection, verify it, then move the alias."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.documents import Chunk
from tandem.errors import BadInput, TandemError
from tandem.indexing.chunking import chunk_release
from tandem.indexing.loader import load_release
from tandem.rag.embedder import Embedder
from tandem.rag.retriever import collection_meta_key
from tandem.rag.sparse import document_vector, query_vector
from tandem.rag.store import DocStore, StoredVectors, point_id

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH = 64
HISTORY_KEY = "index_history"


class VerificationFailed(TandemError):
    status = 500
    type = "index_verification_failed"


@dataclass
class IndexReport:
    release: str
    collection: str
    pages: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def collection_name(release: str) -> str:
    """A fresh collection name for every build of a release."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", release).strip("-") or "release"
    return f"docs-{slug}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 1_000_000:06d}"


def _unique(chunks: Sequence[Chunk]) -> list[Chunk]:
    seen: dict[str, Chunk] = {}
    for chunk in chunks:
        seen.setdefault(point_id(chunk), chunk)
    return list(seen.values())


def _stored_vectors(store: DocStore, collection: str | None) -> dict[str, StoredVectors]:
    if collection is None:
        return {}
    return {
        chunk.content_hash: vectors
        for chunk, vectors in store.scroll_chunks(collection, with_vectors=True)
        if vectors is not None
    }


def _embed_missing(
    chunks: Sequence[Chunk],
    reuse: dict[str, StoredVectors],
    embedder: Embedder,
    progress: Progress,
) -> list[StoredVectors]:
    vectors: dict[str, StoredVectors] = {}
    missing = [c for c in chunks if c.content_hash not in reuse]
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        dense = embedder.embed_documents([c.embed_text for c in batch])
        for chunk, vector in zip(batch, dense, strict=True):
            vectors[chunk.content_hash] = StoredVectors(vector, document_vector(chunk.embed_text))
        progress("embed", min(start + BATCH, len(missing)), len(missing))
    return [reuse.get(c.content_hash) or vectors[c.content_hash] for c in chunks]


def _verify(store: DocStore, collection: str, chunks: Sequence[Chunk]) -> None:
    count = store.count(collection)
    if count != len(chunks):
        raise VerificationFailed(f"{collection} holds {count} points, expected {len(chunks)}")
    stored_files = {c.file for c, _ in store.scroll_chunks(collection)}
    missing = {c.file for c in chunks} - stored_files
    if missing:
        raise VerificationFailed(f"{collection} is missing pages: {sorted(missing)[:5]}")
    probe = chunks[0]
    hits = store.hybrid_query(collection, [0.0] * store.dim, query_vector(probe.embed_text), 5, 20)
    if not hits:
        raise VerificationFailed(f"probe query on {collection} returned nothing")


def index_release(
    store: DocStore,
    embedder: Embedder,
    folder: Path,
    release: str,
    alias: str,
    progress: Progress | None = None,
) -> IndexReport:
    """Build, verify and serve `release` from `folder`; the old release serves until the end."""
    say: Progress = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    pages = load_release(folder)
    chunks = _unique(chunk_release(pages, release, embedder.count_tokens))
    if not chunks:
        raise BadInput(f"{folder} produced no text to index")
    serving = store.alias_target(alias)
    reuse = _stored_vectors(store, serving)
    name = collection_name(release)
    report = IndexReport(release=release, collection=name, pages=len(pages), chunks=len(chunks))
    report.seconds["load_chunk"] = time.perf_counter() - started
    store.create_collection(name)
    try:
        t0 = time.perf_counter()
        vectors = _embed_missing(chunks, reuse, embedder, say)
        report.seconds["embed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, len(chunks), 256):
            store.upsert(name, chunks[start : start + 256], vectors[start : start + 256])
            say("store", min(start + 256, len(chunks)), len(chunks))
        _verify(store, name, chunks)
        report.seconds["store_verify"] = time.perf_counter() - t0
    except BaseException:
        store.delete_collection(name)  # never leave a half-built collection behind
        raise
    report.reused = sum(1 for c in chunks if c.content_hash in reuse)
    report.embedded = len(chunks) - report.reused
    report.removed = len(set(reuse) - {c.content_hash for c in chunks})
    store.put_meta(collection_meta_key(name), {"release": release, "report": report.as_dict()})
    store.move_alias(alias, name)
    report.seconds["total"] = time.perf_counter() - started
    return report
