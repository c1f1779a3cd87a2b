"""The release's vocabulary (what the outcome decision checks a question's subject against),
the citation check and the grading of a finished answer.

The citation check removes `[n]` markers that point at no given block, as the text streams
(a marker split across deltas is held back until it is complete), and reports which blocks
the answer cited.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tandem.answering.literals import UNSUPPORTED_LITERAL
from tandem.documents import Chunk
from tandem.rag.retriever import Retriever
from tandem.rag.sparse import tokenize

# `warnings`
UNCITED = "uncited_answer"  # an answer (not a fallback) that cites no block given
DROPPED = "dropped_citations"  # markers pointing at no given block were removed

_MARKER = re.compile(r"[ \t]*\[(\d+)\]")
_MARKER_NUMBER = re.compile(r"\[(\d+)\]")
_PARTIAL_TAIL = re.compile(r"[ \t]*(?:\[\d{0,6})?$")
_SOURCES = "Sources:"


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
    """What the response says about the answer: its outcome and what backs it."""

    outcome: str  # answered / suggested / declined (tandem/answering/outcome.py)
    grounded: bool  # answered, citing at least one documentation block it was given
    abstained: str | None  # why it was not answered (None when answered)
    cited: tuple[int, ...] = ()
    dropped: int = 0
    warnings: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()  # literals of the answer no given block holds
    suggestions: tuple[dict[str, str], ...] = ()  # the closest pages: file, heading, release

    def to_dict(self) -> dict[str, Any]:
        """The fields the API adds to an answer (the streaming `done` event carries all)."""
        return {
            "outcome": self.outcome,
            "grounded": self.grounded,
            "abstained": self.abstained,
            "warnings": list(self.warnings),
            "unsupported": list(self.unsupported),
            "suggestions": list(self.suggestions),
            "cited": list(self.cited),
        }


def judge(
    outcome: str,
    abstained: str | None,
    citations: CitationFilter,
    unsupported: Sequence[str],
    suggestions: Sequence[dict[str, str]],
    retrieval: bool,
) -> Grounding:
    """Grade a finished answer (the turn's observer counts it for /metrics)."""
    answered = outcome == "answered"
    cited = tuple(sorted(citations.cited)) if answered else ()
    warnings = []
    if citations.dropped:
        warnings.append(DROPPED)
    if retrieval and answered and not cited:
        warnings.append(UNCITED)
    if unsupported:
        warnings.append(UNSUPPORTED_LITERAL)
    return Grounding(
        outcome,
        bool(cited),
        abstained,
        cited,
        len(citations.dropped),
        tuple(warnings),
        tuple(unsupported),
        tuple(suggestions) if outcome == "suggested" else (),  # declined: nothing relevant
    )


def check_citations(answer: str, n_blocks: int) -> tuple[str, CitationFilter]:
    """A complete answer with bad markers removed, and the filter that saw it."""
    citations = CitationFilter(n_blocks)
    text = citations.feed(answer) + citations.flush()
    return text.strip(), citations
