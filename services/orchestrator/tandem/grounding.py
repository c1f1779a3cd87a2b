"""Grounded or silent: the relevance gate before generation, the citation check after it.

The gate declines a question when no retrieved block is relevant enough: the best dense
similarity is low, the retrieved text shares too few of the question's content terms (plain
share, and weighted by each term's IDF in the release), the question uses too many terms the
release never uses, or it names something ("Jira", "SharePoint") that the release never
mentions. The release's vocabulary is built from the store's blocks once per served
collection. Settings: `TANDEM_RETRIEVAL__MIN_SIMILARITY`, `__MIN_TERM_OVERLAP`,
`__MIN_COVERAGE`, `__MAX_UNSEEN_TERMS`, `__DECLINE_UNKNOWN_NAMES`, calibrated by
`bench/bench_grounding.py`.

The citation check removes `[n]` markers that point at no given block, as the text streams
(a marker split across deltas is held back until it is complete), and reports which blocks
the answer cited.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tandem.answer_format import is_fallback
from tandem.documents import Chunk, ScoredChunk
from tandem.metrics import ANSWERS, CITATIONS_DROPPED
from tandem.rag.retriever import Retrieval, Retriever
from tandem.rag.sparse import tokenize
from tandem.settings import RetrievalSettings

# `abstained` reasons
NOT_RELEVANT = "not_relevant"  # the gate declined: no vLLM call
MODEL_FALLBACK = "model_fallback"  # the model answered with the house fallback sentence
# `warnings`
UNCITED = "uncited_answer"  # an answer (not a fallback) that cites no block given
DROPPED = "dropped_citations"  # markers pointing at no given block were removed

_MARKER = re.compile(r"[ \t]*\[(\d+)\]")
_MARKER_NUMBER = re.compile(r"\[(\d+)\]")
_PARTIAL_TAIL = re.compile(r"[ \t]*(?:\[\d{0,6})?$")
_SOURCES = "Sources:"
_SENTENCES = re.compile(r"(?<=[.?!:])\s+|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Relevance:
    """How well the retrieved blocks match the query."""

    similarity: float  # the best dense cosine similarity of any retrieved block
    overlap: float  # share of the query's content terms that occur in the retrieved blocks
    unknown_names: tuple[str, ...] = ()  # names in the query the release never mentions
    coverage: float = 1.0  # the same share, each term weighted by its IDF in the release
    unseen: tuple[str, ...] = ()  # the query's content terms no block of the release contains


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


def names(text: str) -> list[str]:
    """Words written as names: capitalised inside a sentence, or with inner capitals (GPS)."""
    found = []
    for sentence in _SENTENCES.split(text):
        for position, word in enumerate(_WORD.findall(sentence)):
            inner_capital = any(c.isupper() for c in word[1:])
            if len(word) > 1 and ((position > 0 and word[0].isupper()) or inner_capital):
                found.append(word)
    return found


def _chunk_terms(chunk: Chunk) -> list[str]:
    return tokenize(f"{chunk.file} {chunk.embed_text}")


@functools.lru_cache(maxsize=2048)
def _chunk_term_set(chunk: Chunk) -> frozenset[str]:
    """(Cached: the same blocks come back for many questions; tokenizing them was ~2 ms.)"""
    return frozenset(_chunk_terms(chunk))


def _terms(chunks: Sequence[ScoredChunk]) -> set[str]:
    return set().union(*(_chunk_term_set(scored.chunk) for scored in chunks))


def relevance(
    query: str, chunks: Sequence[ScoredChunk], vocabulary: Vocabulary | None = None
) -> Relevance:
    """The gate's signals for `query` and what retrieval returned for it.

    Without the release's `vocabulary`, a name or term missing from the blocks counts as
    unknown to the release and every term weighs the same.
    """
    similarity = max((c.similarity or 0.0 for c in chunks), default=0.0)
    found = _terms(chunks)
    release_terms = vocabulary.frequency if vocabulary else {}  # (not copied: ~10k terms)

    def known(term: str) -> bool:
        return term in found or term in release_terms

    unknown = tuple(n for n in names(query) if not all(known(t) for t in tokenize(n)))
    terms = list(dict.fromkeys(t for t in tokenize(query) if not t.isdigit()))
    if not terms:
        return Relevance(similarity, 0.0, unknown, 0.0)
    weights = [vocabulary.idf(t) if vocabulary else 1.0 for t in terms]
    shared = [t in found for t in terms]
    coverage = sum(w for w, s in zip(weights, shared, strict=True) if s) / sum(weights)
    unseen = tuple(t for t in terms if not known(t))
    return Relevance(similarity, sum(shared) / len(terms), unknown, coverage, unseen)


class RelevanceGate:
    """The gate on the serving release, with the vocabulary of the collection it serves.

    The vocabulary is built from the store's blocks the first time a collection is served
    (collections never change) and replaced when the alias moves to another one.
    """

    def __init__(self, retriever: Retriever, settings: RetrievalSettings) -> None:
        self.retriever = retriever
        self.settings = settings
        self._vocabulary: tuple[str, Vocabulary] | None = None

    def vocabulary(self, collection: str) -> Vocabulary:
        cached = self._vocabulary
        if cached is None or cached[0] != collection:
            blocks = (chunk for chunk, _ in self.retriever.stores.docs.scroll_chunks(collection))
            cached = (collection, Vocabulary.of(blocks))
            self._vocabulary = cached
        return cached[1]

    def mentioned(self, name: str) -> bool:
        """Some block of the serving release contains every term of `name`."""
        vocabulary = self.vocabulary(self.retriever.index_info().collection)
        return all(term in vocabulary for term in tokenize(name))

    def abstain_reason(self, query: str, retrieval: Retrieval) -> str | None:
        """`NOT_RELEVANT` when nothing retrieved is relevant enough to answer from, else None."""
        if not self.settings.gate:
            return None
        vocabulary = self.vocabulary(retrieval.index.collection)
        signals = relevance(query, retrieval.chunks, vocabulary)
        return NOT_RELEVANT if declines(signals, self.settings) else None


def declines(signals: Relevance, gate: RetrievalSettings) -> bool:
    """The gate's rule on the signals (the bench calibrates it on precomputed signals)."""
    return (
        signals.similarity < gate.min_similarity
        or signals.overlap < gate.min_term_overlap
        or signals.coverage < gate.min_coverage
        or (gate.max_unseen_terms is not None and len(signals.unseen) > gate.max_unseen_terms)
        or (gate.decline_unknown_names and bool(signals.unknown_names))
    )


@dataclass
class CitationFilter:
    """Drops `[n]` markers outside 1..n_blocks from a streamed answer; records what was cited.

    `feed` returns the text safe to send now; `flush` the rest once generation ended. Only a
    possibly incomplete marker (`[`, `[1`) and the `Sources:` line are held back.
    """

    n_blocks: int
    cited: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    _pending: str = ""
    _line_open: bool = False  # part of the current line was already sent

    def feed(self, text: str) -> str:
        self._pending += text
        out: list[str] = []
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            fixed = self._complete_line(line)
            if fixed is not None:
                out.append(fixed + "\n")
            self._line_open = False
        tail = self._pending.lstrip()
        if not self._line_open and (tail.startswith(_SOURCES) or _SOURCES.startswith(tail)):
            return "".join(out)  # may become the Sources line: wait for all of it
        match = _PARTIAL_TAIL.search(self._pending)
        start = match.start() if match else len(self._pending)
        safe, self._pending = self._pending[:start], self._pending[start:]
        if safe:
            out.append(self._inline(safe))
            self._line_open = True
        return "".join(out)

    def flush(self) -> str:
        line, self._pending = self._pending, ""
        return self._complete_line(line) or ""

    def _complete_line(self, line: str) -> str | None:
        """A whole line, fixed; None when it was a Sources line with nothing valid left."""
        if self._line_open or not line.lstrip().startswith(_SOURCES):
            return self._inline(line)
        numbers = [int(n) for n in _MARKER_NUMBER.findall(line)]
        valid = list(dict.fromkeys(n for n in numbers if self._valid(n)))
        self._count(numbers)
        if not valid:
            return None
        return _SOURCES + " " + ", ".join(f"[{n}]" for n in valid)

    def _inline(self, text: str) -> str:
        def keep_or_drop(match: re.Match[str]) -> str:
            number = int(match.group(1))
            self._count([number])
            return match.group(0) if self._valid(number) else ""

        return _MARKER.sub(keep_or_drop, text)

    def _valid(self, number: int) -> bool:
        return 1 <= number <= self.n_blocks

    def _count(self, numbers: list[int]) -> None:
        for number in numbers:
            if not self._valid(number):
                self.dropped.append(number)
            elif number not in self.cited:
                self.cited.append(number)


@dataclass(frozen=True)
class Grounding:
    """What the response says about the answer's grounding (see README, "Grounded or silent")."""

    grounded: bool  # the answer cites at least one documentation block it was given
    abstained: str | None  # NOT_RELEVANT or MODEL_FALLBACK, None when it answered
    cited: tuple[int, ...] = ()
    dropped: int = 0
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields the API adds to an answer (the streaming `done` event carries all four)."""
        return {
            "grounded": self.grounded,
            "abstained": self.abstained,
            "warnings": list(self.warnings),
            "cited": list(self.cited),
        }


def judge(
    answer: str, citations: CitationFilter, retrieval: bool, abstained: str | None
) -> Grounding:
    """Grade a finished answer and count the outcome for /metrics."""
    if abstained is None and is_fallback(answer):
        abstained = MODEL_FALLBACK
    cited = tuple(sorted(citations.cited)) if abstained is None else ()
    warnings = []
    if citations.dropped:
        warnings.append(DROPPED)
    if retrieval and abstained is None and not cited:
        warnings.append(UNCITED)
    grounding = Grounding(bool(cited), abstained, cited, len(citations.dropped), tuple(warnings))
    CITATIONS_DROPPED.inc(grounding.dropped)
    ANSWERS.labels(outcome=_outcome(grounding, retrieval)).inc()
    return grounding


def _outcome(grounding: Grounding, retrieval: bool) -> str:
    if not retrieval:
        return "no_retrieval"
    if grounding.abstained:
        return f"abstained_{grounding.abstained}"
    return "grounded" if grounding.grounded else "uncited"


def check_citations(answer: str, n_blocks: int) -> tuple[str, CitationFilter]:
    """A complete answer with bad markers removed, and the filter that saw it."""
    citations = CitationFilter(n_blocks)
    text = citations.feed(answer) + citations.flush()
    return text.strip(), citations
