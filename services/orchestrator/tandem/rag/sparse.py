"""Sparse BM25 vectors for Qdrant. Qdrant's IDF modifier supplies the IDF half at query time."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

K1 = 1.2
B = 0.75
# A fixed average length keeps stored vectors valid when they are reused in a later
# release's collection (a per-collection average would change every value).
AVG_DOC_TOKENS = 120.0

_TOKEN = re.compile(r"[a-z0-9]+(?:[_.-][a-z0-9]+)*")
_STOPWORDS = frozenset(
    """a an and are as at be but by can could do does for from had has have how i if in
    into is it its me my no not of on or our so such that the their then there these they
    this to was we were what when where which who why will with would you your""".split()
)
_stemmer = snowballstemmer.stemmer("english")


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed terms; identifiers like PAPERLESS_DB_HOST also yield their parts."""
    terms: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        parts = re.split(r"[_.-]", token)
        if len(parts) > 1:
            terms.append(token)
        terms.extend(_stem(p) for p in parts if p and p not in _STOPWORDS)
    return terms


def term_index(term: str) -> int:
    """A stable 31-bit index for a term (the same in every process and release)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def document_vector(text: str) -> SparseVector:
    """BM25 term-frequency weights of a chunk."""
    counts = Counter(tokenize(text))
    length = sum(counts.values())
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        norm = tf + K1 * (1 - B + B * length / AVG_DOC_TOKENS)
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / norm
    return SparseVector(indices=list(weights), values=list(weights.values()))


def query_vector(text: str) -> SparseVector:
    """Each distinct query term once; Qdrant multiplies by IDF."""
    indices = sorted({term_index(t) for t in tokenize(text)})
    return SparseVector(indices=indices, values=[1.0] * len(indices))
