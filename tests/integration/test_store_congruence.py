"""The edge engine and qdrant-client answer the same hybrid queries alike on real data:
paperless-ngx v3.0.5 chunked and embedded by Tandem (real MiniLM), the eval questions.

Hits tied at the cut (the same fused score as each engine's 8th hit) are interchangeable:
which of them makes the top 8 is each engine's internal order, not retrieval (one run: 4 of
616 hits differed, 3 of them such ties; the test prints both counts). The overlap that
counts them as agreeing must be >= 0.99 (issue 15), the plain one >= 0.98."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from tests.conftest import ROOT, paperless_release

from tandem.documents import ScoredChunk
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.rag.sparse import query_vector
from tandem.settings import Settings
from tandem.stores.deployment import open_stores
from tandem.stores.docs import DocStore, point_id
from tandem.stores.qdrant_docs import QdrantDocStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOP_K, PREFETCH = 8, 24
TIE = 1e-6


def top_hits(
    store: DocStore, collection: str, dense: list[float], question: str
) -> list[ScoredChunk]:
    hits = store.hybrid_query(collection, dense, query_vector(question), TOP_K, PREFETCH)
    assert len(hits) == TOP_K
    return hits


def agreeing(edge: list[ScoredChunk], local: list[ScoredChunk]) -> tuple[int, int]:
    """Hits both engines returned; and that plus the pairs that differ only in a tie at the cut."""
    edge_scores = {point_id(h.chunk): h.score for h in edge}
    local_scores = {point_id(h.chunk): h.score for h in local}
    common = len(edge_scores.keys() & local_scores.keys())
    cut = edge[-1].score
    if abs(cut - local[-1].score) > TIE:
        return common, common

    def tied_alone(scores: dict[str, float], other: dict[str, float]) -> int:
        return sum(1 for i, s in scores.items() if i not in other and abs(s - cut) <= TIE)

    tied = min(tied_alone(edge_scores, local_scores), tied_alone(local_scores, edge_scores))
    return common, common + tied


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
        counts = []
        for question in questions:
            dense = embedder.embed_query(question)  # one query vector for both engines
            edge = top_hits(stores.docs, report.collection, dense, question)
            counts.append(agreeing(edge, top_hits(local, report.collection, dense, question)))
    finally:
        stores.close()
        local.close()

    hits = TOP_K * len(counts)
    common, agree = (sum(c[i] for c in counts) for i in (0, 1))
    plain, with_ties = common / hits, agree / hits
    print(
        f"top-{TOP_K} overlap edge vs qdrant-client over {len(counts)} questions: {plain:.3f}, "
        f"{with_ties:.3f} with ties at the cut counted as agreeing ({hits - common} of {hits} "
        f"hits differed, {agree - common} of them ties at the cut)"
    )
    assert len(counts) >= 40
    assert with_ties >= 0.99
    assert plain >= 0.98
