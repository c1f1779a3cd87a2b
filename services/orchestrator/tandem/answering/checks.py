"""Stage 4 of a chat turn, check: filters every generated delta passes through, in order.

Each filter has one shape, `feed(text) -> text safe to send now` and `flush() -> the rest`,
so a streamed answer and a whole one (the same stream, drained) go through the same code:

1. `StreamSanitizer` (`answering/sanitize.py`): markup, links to hosts not allowed, quotes
   of the system prompt;
2. `CitationFilter`: `[n]` markers that point at no given block are removed (a marker split
   across deltas is held back until it is complete); records which blocks were cited;
3. `LiteralCheck` (`answering/literals.py`): records the literals no given block holds.

A new check is one more filter in `Checks.__init__`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from tandem.answering.literals import Evidence, LiteralCheck
from tandem.answering.sanitize import StreamSanitizer

_MARKER = re.compile(r"[ \t]*\[(\d+)\]")
_MARKER_NUMBER = re.compile(r"\[(\d+)\]")
_PARTIAL_TAIL = re.compile(r"[ \t]*(?:\[\d{0,6})?$")
_SOURCES = "Sources:"


class Filter(Protocol):
    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


class Checks:
    """The filters of one answer, chained: what one lets through the next one reads."""

    def __init__(self, n_blocks: int, link_hosts: set[str], evidence: Evidence) -> None:
        self.citations = CitationFilter(n_blocks)
        self.literals = LiteralCheck(evidence)
        self.filters: list[Filter] = [StreamSanitizer(link_hosts), self.citations, self.literals]

    def feed(self, text: str) -> str:
        for check in self.filters:
            text = check.feed(text)
        return text

    def flush(self) -> str:
        """What every filter still held, passed through the filters after it."""
        text = ""
        for check in self.filters:
            text = check.feed(text) + check.flush()
        return text


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


def check_citations(answer: str, n_blocks: int) -> tuple[str, CitationFilter]:
    """A complete answer with bad markers removed, and the filter that saw it."""
    citations = CitationFilter(n_blocks)
    text = citations.feed(answer) + citations.flush()
    return text.strip(), citations
