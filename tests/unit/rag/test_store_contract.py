"""The `DocStore` contract, run once per backend: the edge engine (embedded default) and
qdrant-client (its local mode speaks the server's API): congruence tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tandem.documents import Chunk
from tandem.rag.embedder import HashEmbedder
from tandem.rag.sparse import document_vector, query_vector
from tandem.stores.docs import CollectionGone, DocStore, StoredVectors, point_id
from tandem.stores.edge_docs import EdgeDocStore
from tandem.stores.qdrant_docs import QdrantDocStore

EMBEDDER = HashEmbedder()
TOPICS = [
    ("install.md", "Install > Docker", "Run docker compose up to start every service."),
    ("install.md", "Install > Bare metal", "Install the Python package with pip and run it."),
    ("limits.md", "Limits > Rate limits", "Each API token may send 60 requests per minute."),
    ("ocr.md", "OCR > Languages", "Add Turkish OCR by installing the tesseract language pack."),
    ("backup.md", "Backup > Exporter", "The document exporter writes every document to a folder."),
    ("mail.md", "Mail > Rules", "Mail rules consume attachments from an IMAP inbox."),
]


def chunks(release: str = "v1") -> list[Chunk]:
    return [Chunk(file=f, heading=h, text=t, release=release) for f, h, t in TOPICS]


def vectors(items: list[Chunk]) -> list[StoredVectors]:
    dense = EMBEDDER.embed_documents([c.embed_text for c in items])
    return [
        StoredVectors(d, document_vector(c.embed_text)) for c, d in zip(items, dense, strict=True)
    ]


@pytest.fixture(params=["edge", "qdrant-memory", "qdrant-path"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocStore]:
    opened: DocStore
    if request.param == "edge":
        opened = EdgeDocStore(tmp_path / "index", EMBEDDER.dim)
    elif request.param == "qdrant-memory":
        opened = QdrantDocStore(QdrantClient(":memory:"), EMBEDDER.dim)
    else:
        opened = QdrantDocStore(QdrantClient(path=str(tmp_path / "qdrant")), EMBEDDER.dim)
    yield opened
    opened.close()


def filled(store: DocStore, name: str, release: str = "v1") -> list[Chunk]:
    items = chunks(release)
    store.create_collection(name)
    store.upsert(name, items[:3], vectors(items[:3]))
    store.upsert(name, items[3:], vectors(items[3:]))
    store.finish(name)
    return items


def ask(store: DocStore, name: str, question: str, k: int = 3) -> list[str]:
    dense = EMBEDDER.embed_query(question)
    hits = store.hybrid_query(name, dense, query_vector(question), top_k=k, prefetch=10)
    return [hit.chunk.heading for hit in hits]


def test_create_upsert_count_and_list(store: DocStore) -> None:
    filled(store, "docs-a")
    store.create_collection("docs-b")
    assert store.count("docs-a") == len(TOPICS)
    assert store.count("docs-b") == 0
    assert {"docs-a", "docs-b"} <= set(store.collections())


def test_upsert_of_the_same_chunks_converges(store: DocStore) -> None:
    items = filled(store, "docs-a")
    store.upsert("docs-a", items, vectors(items))
    assert store.count("docs-a") == len(TOPICS)


def test_hybrid_query_finds_the_matching_chunk_first(store: DocStore) -> None:
    filled(store, "docs-a")
    assert ask(store, "docs-a", "how many requests per minute may a token send")[0] == (
        "Limits > Rate limits"
    )
    assert ask(store, "docs-a", "turkish tesseract language")[0] == "OCR > Languages"
    hits = store.hybrid_query("docs-a", EMBEDDER.embed_query("zzz"), query_vector(""), 2, 10)
    assert len(hits) == 2  # no sparse terms: the dense prefetch alone still answers


def test_scroll_returns_every_chunk_with_its_vectors(store: DocStore) -> None:
    items = filled(store, "docs-a")
    expected = {point_id(c): v for c, v in zip(items, vectors(items), strict=True)}
    seen = {point_id(c): v for c, v in store.scroll_chunks("docs-a", with_vectors=True)}
    assert set(seen) == set(expected)
    for key, stored in seen.items():
        assert stored is not None
        sparse, want = stored.sparse, expected[key].sparse  # Qdrant keeps indices sorted
        assert dict(zip(sparse.indices, sparse.values, strict=True)) == pytest.approx(
            dict(zip(want.indices, want.values, strict=True))
        )
        assert stored.dense == pytest.approx(expected[key].dense, abs=1e-5)
    assert all(v is None for _, v in store.scroll_chunks("docs-a"))


def test_delete_removes_a_collection(store: DocStore) -> None:
    filled(store, "docs-a")
    store.delete_collection("docs-a")
    assert "docs-a" not in store.collections()
    with pytest.raises(CollectionGone):
        store.hybrid_query("docs-a", EMBEDDER.embed_query("x"), query_vector("x"), 3, 10)


def test_publish_and_roll_back_a_pointer(store: DocStore) -> None:
    filled(store, "docs-a", "v1")
    filled(store, "docs-b", "v2")
    assert store.pointer_target("docs") is None
    store.move_pointer("docs", "docs-a")
    store.move_pointer("docs", "docs-b")
    assert store.pointer_target("docs") == "docs-b"
    store.move_pointer("docs", "docs-a")  # rollback
    assert store.pointer_target("docs") == "docs-a"
    store.move_pointer("pinned", "docs-b")
    assert store.pointed_at() == {"docs-a", "docs-b"}
    served = store.hybrid_query(
        "docs-a", EMBEDDER.embed_query("docker"), query_vector("docker"), 6, 10
    )
    assert {hit.chunk.release for hit in served} == {"v1"}


def scored(store: DocStore, question: str) -> list[tuple[float, str]]:
    """The top 4 as (RRF score, heading), best first."""
    dense = EMBEDDER.embed_query(question)
    hits = store.hybrid_query("docs-a", dense, query_vector(question), top_k=4, prefetch=10)
    return sorted((-round(hit.score, 4), hit.chunk.heading) for hit in hits)


def test_both_backends_rank_alike(tmp_path: Path) -> None:
    edge = EdgeDocStore(tmp_path / "index", EMBEDDER.dim)
    local = QdrantDocStore(QdrantClient(":memory:"), EMBEDDER.dim)
    try:
        for store in (edge, local):
            filled(store, "docs-a")
        for question in ("docker compose", "requests per minute", "mail attachments imap"):
            mine, theirs = scored(edge, question), scored(local, question)
            assert [score for score, _ in mine] == [score for score, _ in theirs]
            assert mine[0] == theirs[0]  # below the top, engines order equal-scored terms apart
    finally:
        edge.close()
        local.close()
