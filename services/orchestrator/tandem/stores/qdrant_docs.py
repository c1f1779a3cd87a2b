"""`DocStore` on `qdrant-client`: a Qdrant server or cluster (or the client's local mode,
which speaks the same API and runs the congruence tests). Blue/green by alias."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tandem.documents import Chunk, ScoredChunk
from tandem.rag.sparse import SparseVector
from tandem.stores.docs import (
    DENSE,
    SPARSE,
    CollectionGone,
    StoredVectors,
    chunk_from_payload,
    chunk_payload,
    dense_similarity,
    point_id,
    stored_vectors,
)


class QdrantDocStore:
    """Doc collections in Qdrant; each pointer is a Qdrant alias."""

    def __init__(self, client: QdrantClient, dim: int) -> None:
        self.client = client
        self.dim = dim

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
                payload=chunk_payload(chunk),
            )
            for chunk, v in zip(chunks, vectors, strict=True)
        ]
        self.client.upsert(name, points=points, wait=True)

    def finish(self, name: str) -> None:
        """Nothing to do: `wait=True` upserts are durable and the server optimizes itself."""

    def scroll_chunks(
        self, name: str, with_vectors: bool = False
    ) -> Iterator[tuple[Chunk, StoredVectors | None]]:
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                name, limit=256, offset=offset, with_payload=True, with_vectors=with_vectors
            )
            for record in records:
                yield chunk_from_payload(record.payload or {}), stored_vectors(record.vector)
            if offset is None:
                return

    def hybrid_query(
        self, collection: str, dense: list[float], sparse: SparseVector, top_k: int, prefetch: int
    ) -> list[ScoredChunk]:
        prefetches = [models.Prefetch(query=dense, using=DENSE, limit=prefetch)]
        if sparse.indices:
            prefetches.append(
                models.Prefetch(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    limit=prefetch,
                )
            )
        try:
            result = self.client.query_points(
                collection,
                prefetch=prefetches,
                query=models.FusionQuery(fusion=models.Fusion.RRF),  # k = RRF_K by default
                limit=top_k,
                with_payload=True,
                with_vectors=[DENSE],  # the relevance gate reads each block's dense similarity
            )
        except (UnexpectedResponse, ValueError) as error:
            if collection not in self.collections():
                raise CollectionGone(f"collection {collection} was deleted") from error
            raise
        return [
            ScoredChunk(
                chunk=chunk_from_payload(p.payload or {}),
                score=float(p.score),
                similarity=dense_similarity(dense, p.vector),
            )
            for p in result.points
        ]

    def pointer_target(self, pointer: str) -> str | None:
        for item in self.client.get_aliases().aliases:
            if item.alias_name == pointer:
                return str(item.collection_name)
        return None

    def move_pointer(self, pointer: str, collection: str) -> None:
        operations: list[Any] = []
        if self.pointer_target(pointer) is not None:
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=pointer))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=pointer)
            )
        )
        self.client.update_collection_aliases(change_aliases_operations=operations)

    def pointed_at(self) -> set[str]:
        return {str(a.collection_name) for a in self.client.get_aliases().aliases}

    def close(self) -> None:
        self.client.close()
