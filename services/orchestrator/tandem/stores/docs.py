"""The document store seam: one Protocol, two backends, and what both share.

`EdgeDocStore` (`tandem.stores.edge_docs`) runs Qdrant's own engine in-process, one shard
directory per collection, and serves through a pointer file. `QdrantDocStore`
(`tandem.stores.qdrant_docs`) talks to a Qdrant server or cluster through `qdrant-client`
and serves through an alias. Chat, retrieval and indexing only see `DocStore`.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import sys
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
# qdrant-edge's messages for a failing store (its other errors are a caller's mistakes)
EDGE_STORAGE_ERRORS = (
    "Service runtime error",
    "Inconsistent storage",
    "Out of memory",
    "Timeout error",
    "Operation cancelled",
)
CLIENT_CLOSED = ("QdrantLocal instance is closed", "Client was closed")  # local, remote mode
log = logging.getLogger("tandem.stores")


class CollectionGone(DependencyDown):
    """The collection was deleted between reading the pointer and querying it."""


def storage_failure(error: BaseException) -> DependencyDown | None:
    """The 503 for `error` when it says the store is unreachable or failing; None for a bug.

    Storage and connection failures: OS and I/O errors (files, sockets, timeouts), SQLite's
    operational errors (locked, disk I/O, full) and a file that is not a database,
    qdrant-edge's storage errors (the engine raises plain `Exception`s whose message names
    the kind: a closed shard is a "Service runtime error"), and qdrant-client's transport
    errors, its 5xx/429/auth answers and a closed client. A wrong vector size, an unknown
    vector name or a malformed request is our bug, and stays one (a 500, logged with its
    traceback).
    """
    if isinstance(error, OSError | sqlite3.OperationalError) or _not_a_database(error):
        return DependencyDown(f"the document store is unavailable ({_kind(error)})")
    if type(error) is Exception and str(error).startswith(EDGE_STORAGE_ERRORS):
        return DependencyDown("the embedded document store failed; see the server log")
    return _qdrant_client_failure(error)


def _not_a_database(error: BaseException) -> bool:
    # SQLite's base class itself: its subclasses (integrity, programming, ...) are bugs
    return type(error) is sqlite3.DatabaseError


def _kind(error: BaseException) -> str:
    return "timeout" if isinstance(error, TimeoutError) else type(error).__name__


def _qdrant_client_failure(error: BaseException) -> DependencyDown | None:
    # looked up, not imported: qdrant-client takes ~1 s to import, an embedded deployment
    # never loads it, and where it is not loaded none of its errors can be raised
    client_errors = sys.modules.get("qdrant_client.http.exceptions")
    if client_errors is None:
        return None
    if isinstance(error, client_errors.ResponseHandlingException):
        return DependencyDown("the Qdrant server did not answer")
    if isinstance(error, client_errors.UnexpectedResponse):
        status = error.status_code
        if status is None or status >= 500 or status in {401, 403, 408, 429}:
            return DependencyDown(f"the Qdrant server answered HTTP {status}")
        return None
    common = sys.modules.get("qdrant_client.common.client_exceptions")
    if common is not None and isinstance(error, common.ResourceExhaustedResponse):
        return DependencyDown("the Qdrant server is overloaded", error.retry_after_s)
    if isinstance(error, RuntimeError) and str(error).startswith(CLIENT_CLOSED):
        return DependencyDown("the Qdrant client was closed")
    return None


def store_reads(method: Callable[P, R]) -> Callable[P, R]:
    """A read that serving depends on: the store failing becomes a 503 (DependencyDown),
    logged; any other exception is a bug and goes on up as it is (a 500 at the API edge)."""

    @functools.wraps(method)
    def read(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except TandemError:
            raise
        except Exception as error:
            down = storage_failure(error)
            if down is None:
                raise
            log.warning("%s: %s", down, f"{error!r}"[:500])
            raise down from error

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
