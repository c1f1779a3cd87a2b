"""Hybrid retrieval over real third-party docs (paperless-ngx v3.0.5) that nobody here wrote.

Twelve questions in our own words; a section that answers it must be in the top 4. Where the
docs answer a question in two places (the usage page and the setting it names), both count.
The threshold leaves room for one miss: this is a quality floor, not a per-question oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import paperless_release

from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.stores.deployment import open_stores

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    # (question, [(a file that answers it, a part of that section's heading path), ...])
    (
        "which env var sets the tesseract OCR language",
        [("configuration.md", "PAPERLESS_OCR_LANGUAGE")],
    ),
    (
        "how do I pass extra postgres connection options",
        [("configuration.md", "PAPERLESS_DB_OPTIONS")],
    ),
    ("back up all my documents and metadata to a folder", [("administration.md", "exporter")]),
    ("turn on two factor auth for my login", [("usage.md", "Two-factor")]),
    ("fetch documents from an email inbox automatically", [("usage.md", "mail")]),
    ("how do workflows trigger when a document is added", [("usage.md", "Workflows")]),
    ("authenticate against the REST API with a token", [("api.md", "Authorization")]),
    (
        "where do I drop files so they get consumed",
        [
            ("configuration.md", "PAPERLESS_CONSUMPTION_DIR"),
            ("usage.md", "The consumption directory"),
        ],
    ),
    ("set up single sign on with OpenID Connect", [("advanced_usage.md", "OpenID Connect")]),
    (
        "what changed in the database settings when moving to version 3",
        [("migration-v3.md", "Database")],
    ),
    (
        "documents are not consumed from the watched folder, inotify",
        [
            ("troubleshooting.md", "consum"),
            # the troubleshooting page's own fix: "enable filesystem polling with ..."
            ("configuration.md", "PAPERLESS_CONSUMER_POLLING_INTERVAL"),
        ],
    ),
    ("share documents with other users and set permissions", [("usage.md", "Permissions")]),
]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Retriever]:
    folder: Path = paperless_release("v3.0.5")
    stores = open_stores(Settings(data_dir=tmp_path_factory.mktemp("paperless")), embedder.dim)
    index_release(stores, embedder, folder, "v3.0.5", "docs")
    yield Retriever(stores, embedder, "docs", prefetch=24)
    stores.close()


def test_the_expected_page_is_in_the_top_4(retriever: Retriever) -> None:
    misses = []
    for question, answers in QUESTIONS:
        result = retriever.retrieve(question, top_k=4)
        assert result.index.release == "v3.0.5"
        assert all(s.chunk.release == "v3.0.5" for s in result.chunks)
        hit = any(
            s.chunk.file == file and heading.lower() in s.chunk.heading.lower()
            for s in result.chunks
            for file, heading in answers
        )
        if not hit:
            misses.append((question, [(s.chunk.file, s.chunk.heading) for s in result.chunks]))
    assert len(misses) <= 1, misses


def test_heading_paths_of_real_docs_are_clean(retriever: Retriever) -> None:
    result = retriever.retrieve("PAPERLESS_DB_OPTIONS", top_k=4)
    top = result.chunks[0].chunk
    assert top.file == "configuration.md"
    assert top.heading.startswith("Configuration > ") and "{#" not in top.heading
