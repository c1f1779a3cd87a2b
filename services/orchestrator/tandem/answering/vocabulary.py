"""The serving release's vocabulary: what the outcome decision checks a question's subject
against (`answering/subject.py`), built once per collection from the store's blocks."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tandem.documents import Chunk
from tandem.rag.retriever import Retriever
from tandem.rag.sparse import tokenize


@dataclass(frozen=True)
class Vocabulary:
    """How many blocks of a release contain each term: the gate's measure of specificity."""

    blocks: int
    frequency: Mapping[str, int]

    @classmethod
    def of(cls, chunks: Iterable[Chunk]) -> Vocabulary:
        frequency: Counter[str] = Counter()
        blocks = 0
        for chunk in chunks:
            frequency.update(set(_chunk_terms(chunk)))
            blocks += 1
        return cls(blocks, frequency)

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.frequency.get(term, 0) > 0

    def idf(self, term: str) -> float:
        """Rare terms weigh more; a term the release never uses weighs most."""
        return math.log((self.blocks + 1) / (self.frequency.get(term, 0) + 0.5))


def _chunk_terms(chunk: Chunk) -> list[str]:
    return tokenize(f"{chunk.file} {chunk.embed_text}")


class ReleaseVocabulary:
    """The vocabulary of the serving release, built from the store's blocks the first time a
    collection is served (collections never change) and replaced when the pointer moves."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self._vocabulary: tuple[str, Vocabulary] | None = None

    def vocabulary(self, collection: str) -> Vocabulary:
        cached = self._vocabulary
        if cached is None or cached[0] != collection:
            blocks = (chunk for chunk, _ in self.retriever.stores.docs.scroll_chunks(collection))
            cached = (collection, Vocabulary.of(blocks))
            self._vocabulary = cached
        return cached[1]
