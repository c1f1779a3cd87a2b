"""The document store seam: one Protocol, two backends, and what both share.

`EdgeDocStore` (`tandem.stores.edge_docs`) runs Qdrant's own engine in-process, one shard
directory per collection, and serves through a pointer file. `QdrantDocStore`
(`tandem.stores.qdrant_docs`) talks to a Qdrant server or cluster through `qdrant-client`
and serves through an alias. Chat, retrieval and indexing only see `DocStore`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import numpy as np

from tandem.documents import Chunk, ScoredChunk
from tandem.errors import DependencyDown, TandemError
from tandem.rag.sparse import SparseVector

DENSE = "dense"
SPARSE = "bm25"
RRF_K = 2  # Qdrant's default reciprocal-rank-fusion constant (server, client and edge)
P = ParamSpec("P")
R = TypeVar("R")
_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4c59-9a43-2f6d4b1e7a10")


class CollectionGone(DependencyDown):
    """The collection was deleted between reading the pointer and querying it."""


def store_reads(method: Callable[P, R]) -> Callable[P, R]:
    """A read that serving depends on: the store failing becomes a 503 (DependencyDown).

    Embedded and server Qdrant fail with different exceptions (a closed shard, a lost
    connection); either way the request must not go on without its retrieval.
    """

    @functools.wraps(method)
    def read(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except TandemError:
            raise
        except Exception as error:
            raise DependencyDown(f"the document store failed: {error!r}"[:300]) from error

    return read


@dataclass(frozen=True)
class StoredVectors:
    dense: list[float]
    sparse: SparseVector


class DocStore(Protocol):
    """Collections of doc chunks and the named pointers (aliases) that say which one serves."""

    dim: int

    def create_collection(self, name: str) -> None: ...

    def delete_collection(self, name: str) -> None: ...

    def collections(self) -> list[str]: ...

    def count(self, name: str) -> int: ...

    def upsert(
        self, name: str, chunks: Sequence[Chunk], vectors: Sequence[StoredVectors]
    ) -> None: ...

    def finish(self, name: str) -> None:
        """Make a filled collection durable and fast to search (before it is verified)."""
        ...

    def scroll_chunks(
        self, name: str, with_vectors: bool = False
    ) -> Iterator[tuple[Chunk, StoredVectors | None]]:
        """Every chunk of a collection (with its vectors when asked), page by page."""
        ...

    def hybrid_query(
        self, collection: str, dense: list[float], sparse: SparseVector, top_k: int, prefetch: int
    ) -> list[ScoredChunk]:
        """Dense and sparse prefetch, fused with reciprocal rank fusion."""
        ...

    def pointer_target(self, pointer: str) -> str | None:
        """The collection `pointer` serves now, or None."""
        ...

    def move_pointer(self, pointer: str, collection: str) -> None:
        """Point `pointer` at `collection` in one atomic step."""
        ...

    def pointed_at(self) -> set[str]:
        """Every collection some pointer serves (never deleted as a leftover)."""
        ...

    def close(self) -> None: ...


def point_id(chunk: Chunk) -> str:
    """Deterministic id: re-running an index converges instead of duplicating points."""
    return str(uuid.uuid5(_NAMESPACE, f"{chunk.file}\x00{chunk.heading}\x00{chunk.content_hash}"))


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    """What a point stores beside its vectors."""
    return {
        "file": chunk.file,
        "heading": chunk.heading,
        "text": chunk.text,
        "release": chunk.release,
        "anchor": chunk.anchor,
        "content_hash": chunk.content_hash,
    }


def chunk_from_payload(payload: dict[str, Any]) -> Chunk:
    """Rebuild the chunk that a point's payload describes."""
    return Chunk(
        file=payload["file"],
        heading=payload["heading"],
        text=payload["text"],
        release=payload.get("release", ""),
        anchor=payload.get("anchor"),
    )


def stored_vectors(raw: Any) -> StoredVectors | None:
    """The vectors of a scrolled point (either backend's record), or None without them."""
    if not isinstance(raw, dict) or DENSE not in raw:
        return None
    sparse = raw.get(SPARSE)
    indices = list(sparse.indices) if sparse is not None else []
    values = list(sparse.values) if sparse is not None else []
    return StoredVectors(dense=list(raw[DENSE]), sparse=SparseVector(indices, values))


def dense_similarity(query: list[float], raw: Any) -> float | None:
    """Cosine of the query and a point's stored dense vector (both normalised), if returned."""
    dense = raw.get(DENSE) if isinstance(raw, dict) else None
    if dense is None:
        return None
    if len(dense) != len(query):
        raise ValueError(f"a {len(dense)}-d stored vector against a {len(query)}-d query")
    # numpy: summing 384 products in Python took a large share of a hybrid query's own time
    return float(np.dot(np.asarray(query, dtype=np.float32), np.asarray(dense, dtype=np.float32)))
