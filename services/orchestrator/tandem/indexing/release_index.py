"""A docs release indexed by Tandem's own indexer into a temporary embedded Qdrant, and
the item's "right" chunks in it (used to build retrieval-shaped training data)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tandem.documents import Chunk


def _heading_matches(heading: str, wanted: str) -> bool:
    return heading == wanted or heading.endswith(" > " + wanted)


def gold_chunks(file: str, heading: str, chunks: Sequence[Chunk]) -> set[Chunk]:
    """The item's own section: same page, heading path equal to or ending with its heading.

    A heading with no text of its own (only subsections) is answered by its subsections.
    """
    page = [c for c in chunks if c.file == file]
    exact = {c for c in page if _heading_matches(c.heading, heading)}
    return exact or {
        c
        for c in page
        if any(
            _heading_matches(" > ".join(c.heading.split(" > ")[:n]), heading)
            for n in range(1, c.heading.count(" > ") + 1)
        )
    }


class ReleaseIndex:
    """One docs release indexed with Tandem's own indexer into a temporary embedded Qdrant."""

    def __init__(self, folder: Path, release: str, embedder: Any, workdir: Path) -> None:
        from qdrant_client import QdrantClient

        from tandem.indexing.reindex import index_release
        from tandem.rag.retriever import Retriever
        from tandem.rag.store import DocStore
        from tandem.settings import get_settings

        self.client = QdrantClient(path=str(workdir / release))
        store = DocStore(self.client, embedder.dim)
        report = index_release(store, embedder, folder, release, alias="docs")
        self.chunks = [chunk for chunk, _ in store.scroll_chunks(report.collection)]
        self.retriever = Retriever(store, embedder, "docs", get_settings().retrieval.prefetch)

    def retrieve(self, query: str, k: int) -> list[Chunk]:
        return [scored.chunk for scored in self.retriever.retrieve(query, k).chunks]

    def close(self) -> None:
        self.client.close()
