"""Hybrid retrieval over the collection the serving pointer names, or one the caller names."""

from __future__ import annotations

from dataclasses import dataclass

from tandem.documents import ScoredChunk
from tandem.errors import IndexEmpty
from tandem.rag.embedder import Embedder
from tandem.rag.sparse import query_vector
from tandem.stores.deployment import Stores
from tandem.stores.docs import CollectionGone, store_reads


@dataclass(frozen=True)
class IndexInfo:
    release: str
    collection: str


@dataclass(frozen=True)
class Retrieval:
    chunks: list[ScoredChunk]
    index: IndexInfo


class Retriever:
    """Embeds the query, runs the dense + sparse hybrid query on the pointer, returns top-k."""

    def __init__(self, stores: Stores, embedder: Embedder, alias: str, prefetch: int) -> None:
        self.stores = stores
        self.embedder = embedder
        self.alias = alias
        self.prefetch = prefetch
        self._releases: dict[str, str] = {}  # collection -> release; collections are immutable

    @store_reads
    def index_info(self, collection: str | None = None) -> IndexInfo:
        """The collection and release the pointer serves now (shared by all replicas), or
        those of `collection` when the caller names one (a release pair's own collection)."""
        collection = collection or self.stores.docs.pointer_target(self.alias)
        if collection is None:
            raise IndexEmpty(
                f"no documentation is indexed yet (pointer {self.alias!r} is missing); "
                "run `tandem index PATH --release R` or POST /v1/admin/index"
            )
        if collection not in self._releases:
            record = self.stores.state.release_record(collection)
            self._releases[collection] = record.release if record else "unknown"
        return IndexInfo(release=self._releases[collection], collection=collection)

    @store_reads
    def retrieve(self, query: str, top_k: int, collection: str | None = None) -> Retrieval:
        """The top-k chunks for `query` from the serving release, or from `collection`.

        A turn that answers from a release pair names the pair's collection, read with its
        adapter from one pointer, so its blocks never come from another pair's docs.
        """
        dense, sparse = self.embedder.embed_query(query), query_vector(query)
        info = self.index_info(collection)
        try:
            chunks = self.stores.docs.hybrid_query(
                info.collection, dense, sparse, top_k, self.prefetch
            )
        except CollectionGone:  # deleted after the pointer moved on: ask the new one
            if collection is not None:
                raise  # a named collection has no newer one; the caller reads its pair again
            info = self.index_info()
            chunks = self.stores.docs.hybrid_query(
                info.collection, dense, sparse, top_k, self.prefetch
            )
        return Retrieval(chunks=chunks, index=info)  # both stores fill in `similarity`
