"""A docs release indexed by Tandem's own indexer into a temporary embedded store, and
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
    """One docs release indexed with Tandem's own indexer into a temporary embedded store."""

    def __init__(self, folder: Path, release: str, embedder: Any, workdir: Path) -> None:
        from tandem.indexing.reindex import index_release
        from tandem.rag.retriever import Retriever
        from tandem.settings import Settings, get_settings
        from tandem.stores.deployment import open_stores

        self.stores = open_stores(Settings(data_dir=workdir / release), embedder.dim)
        report = index_release(self.stores, embedder, folder, release, alias="docs")
        self.chunks = [chunk for chunk, _ in self.stores.docs.scroll_chunks(report.collection)]
        prefetch = get_settings().retrieval.prefetch
        self.retriever = Retriever(self.stores, embedder, "docs", prefetch)

    def retrieve(self, query: str, k: int) -> list[Chunk]:
        return [scored.chunk for scored in self.retriever.retrieve(query, k).chunks]

    def close(self) -> None:
        self.stores.close()
