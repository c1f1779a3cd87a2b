"""The edge engine and qdrant-client answer the same hybrid queries alike on real data:
paperless-ngx v3.0.5 chunked and embedded by Tandem (real MiniLM), the eval questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from tests.conftest import ROOT, paperless_release

from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.rag.qdrant_store import QdrantDocStore
from tandem.rag.sparse import query_vector
from tandem.rag.store import DocStore, point_id
from tandem.settings import Settings
from tandem.storage import open_stores

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOP_K, PREFETCH = 8, 24


def top_ids(store: DocStore, collection: str, embedder: Embedder, question: str) -> list[str]:
    dense = embedder.embed_query(question)
    hits = store.hybrid_query(collection, dense, query_vector(question), TOP_K, PREFETCH)
    return [point_id(hit.chunk) for hit in hits]


def test_edge_and_qdrant_client_return_the_same_top_8(tmp_path: Path, embedder: Embedder) -> None:
    stores = open_stores(Settings(data_dir=tmp_path / "data"), embedder.dim)
    local = QdrantDocStore(QdrantClient(path=str(tmp_path / "qdrant")), embedder.dim)
    try:
        report = index_release(stores, embedder, paperless_release("v3.0.5"), "v3.0.5", "docs")
        local.create_collection(report.collection)  # the very same points and vectors
        rows = list(stores.docs.scroll_chunks(report.collection, with_vectors=True))
        local.upsert(report.collection, [c for c, _ in rows], [v for _, v in rows if v])
        assert local.count(report.collection) == report.chunks > 1000

        lines = (ROOT / "eval" / "paperless-ngx.jsonl").read_text().splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]
        overlaps = []
        for question in questions:
            edge_ids = top_ids(stores.docs, report.collection, embedder, question)
            local_ids = top_ids(local, report.collection, embedder, question)
            assert len(edge_ids) == len(local_ids) == TOP_K
            overlaps.append(len(set(edge_ids) & set(local_ids)) / TOP_K)
    finally:
        stores.close()
        local.close()

    mean = sum(overlaps) / len(overlaps)
    print(f"top-{TOP_K} overlap edge vs qdrant-client: {mean:.3f} over {len(overlaps)} questions")
    assert len(overlaps) >= 40
    assert mean >= 0.99
