"""The Qdrant store: one code path for embedded mode (`path=`) and a server or cluster (`url=`)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from qdrant_client import QdrantClient, models

from tandem.documents import Chunk, ScoredChunk
from tandem.errors import DependencyDown, TandemError
from tandem.rag.sparse import SparseVector
from tandem.settings import Settings

DENSE = "dense"
SPARSE = "bm25"
META_COLLECTION = "tandem_meta"
P = ParamSpec("P")
R = TypeVar("R")
_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4c59-9a43-2f6d4b1e7a10")


def open_client(settings: Settings) -> QdrantClient:
    """A server/cluster client when TANDEM_QDRANT__URL is set, else embedded on disk."""
    if settings.qdrant.url:
        return QdrantClient(url=settings.qdrant.url, api_key=settings.qdrant.api_key, timeout=30)
    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(settings.qdrant_path))
    except RuntimeError as error:  # embedded storage is locked by another process
        raise DependencyDown(
            f"the embedded Qdrant store at {settings.qdrant_path} is in use by another "
            "process (is `tandem up` running? use the admin API, or stop it first)"
        ) from error


def point_id(chunk: Chunk) -> str:
    """Deterministic id: re-running an index converges instead of duplicating points."""
    return str(uuid.uuid5(_NAMESPACE, f"{chunk.file}\x00{chunk.heading}\x00{chunk.content_hash}"))


def _payload(chunk: Chunk) -> dict[str, Any]:
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


@dataclass(frozen=True)
class StoredVectors:
    dense: list[float]
    sparse: SparseVector


def store_reads(method: Callable[P, R]) -> Callable[P, R]:
    """A read that serving depends on: the store failing becomes a 503 (DependencyDown).

    Embedded and server Qdrant fail with different exceptions (a closed instance, a lost
    connection); either way the request must not go on without its retrieval or state.
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


class DocStore:
    """Collections of doc chunks, the serving alias, and the shared metadata collection."""

    def __init__(self, client: QdrantClient, dim: int) -> None:
        self.client = client
        self.dim = dim

    # --- collections -------------------------------------------------------------------
    def create_collection(self, name: str) -> None:
        self.client.create_collection(
            name,
            vectors_config={
                DENSE: models.VectorParams(size=self.dim, distance=models.Distance.COSINE)
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )

    def delete_collection(self, name: str) -> None:
        self.client.delete_collection(name)

    def collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    def count(self, name: str) -> int:
        return int(self.client.count(name, exact=True).count)

    def upsert(self, name: str, chunks: Sequence[Chunk], vectors: Sequence[StoredVectors]) -> None:
        points = [
            models.PointStruct(
                id=point_id(chunk),
                vector={
                    DENSE: v.dense,
                    SPARSE: models.SparseVector(indices=v.sparse.indices, values=v.sparse.values),
                },
                payload=_payload(chunk),
            )
            for chunk, v in zip(chunks, vectors, strict=True)
        ]
        self.client.upsert(name, points=points, wait=True)

    def scroll_chunks(
        self, name: str, with_vectors: bool = False
    ) -> Iterator[tuple[Chunk, StoredVectors | None]]:
        """Every chunk of a collection (with its vectors when asked), page by page."""
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                name, limit=256, offset=offset, with_payload=True, with_vectors=with_vectors
            )
            for record in records:
                yield chunk_from_payload(record.payload or {}), _vectors(record.vector)
            if offset is None:
                return

    # --- the serving alias -------------------------------------------------------------
    @store_reads
    def alias_target(self, alias: str) -> str | None:
        for item in self.client.get_aliases().aliases:
            if item.alias_name == alias:
                return str(item.collection_name)
        return None

    def move_alias(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection` in one atomic call."""
        operations: list[Any] = []
        if self.alias_target(alias) is not None:
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        self.client.update_collection_aliases(change_aliases_operations=operations)

    # --- retrieval ---------------------------------------------------------------------
    @store_reads
    def hybrid_query(
        self, collection: str, dense: list[float], sparse: SparseVector, top_k: int, prefetch: int
    ) -> list[ScoredChunk]:
        """Dense and sparse prefetch, fused with reciprocal rank fusion."""
        prefetches = [models.Prefetch(query=dense, using=DENSE, limit=prefetch)]
        if sparse.indices:
            prefetches.append(
                models.Prefetch(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    limit=prefetch,
                )
            )
        result = self.client.query_points(
            collection,
            prefetch=prefetches,
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=top_k,
            with_payload=True,
        )
        return [
            ScoredChunk(chunk=chunk_from_payload(p.payload or {}), score=float(p.score))
            for p in result.points
        ]

    # --- shared metadata (state every replica must see) ----------------------------------
    def _ensure_meta(self) -> None:
        if not self.client.collection_exists(META_COLLECTION):
            self.client.create_collection(META_COLLECTION, vectors_config={})

    @store_reads
    def get_meta(self, key: str) -> dict[str, Any] | None:
        if not self.client.collection_exists(META_COLLECTION):
            return None
        records = self.client.retrieve(META_COLLECTION, ids=[_meta_id(key)], with_payload=True)
        return dict(records[0].payload or {}).get("value") if records else None

    def put_meta(self, key: str, value: dict[str, Any]) -> None:
        self._ensure_meta()
        point = models.PointStruct(
            id=_meta_id(key), vector={}, payload={"key": key, "value": value}
        )
        self.client.upsert(META_COLLECTION, points=[point], wait=True)


def _meta_id(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"meta:{key}"))


def _vectors(raw: Any) -> StoredVectors | None:
    if not isinstance(raw, dict) or DENSE not in raw:
        return None
    sparse = raw.get(SPARSE)
    indices = list(sparse.indices) if sparse is not None else []
    values = list(sparse.values) if sparse is not None else []
    return StoredVectors(dense=list(raw[DENSE]), sparse=SparseVector(indices, values))
