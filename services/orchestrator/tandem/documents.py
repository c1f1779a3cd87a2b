"""The plain data that flows from the docs folder to the prompt."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """One Markdown page of a docs release."""

    file: str  # path relative to the release folder, with forward slashes
    text: str


@dataclass(frozen=True)
class Chunk:
    """A heading-aware piece of a page, the unit that is embedded and retrieved."""

    file: str
    heading: str  # heading path, e.g. "Configuration > Database > PAPERLESS_DB_OPTIONS"
    text: str
    release: str = ""
    anchor: str | None = None

    @property
    def embed_text(self) -> str:
        """What the embedder and BM25 see: the heading path gives the text its topic."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    @property
    def content_hash(self) -> str:
        """Identifies the embedded content; unchanged hashes reuse stored vectors."""
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk returned by retrieval, with its fused score and its dense similarity.

    `score` ranks (reciprocal rank fusion: it says nothing about relevance on its own);
    `similarity` is the query's cosine similarity to the chunk, which the relevance gate
    reads. A store may leave it None; the Retriever then fills it in.
    """

    chunk: Chunk
    score: float
    similarity: float | None = None
