"""Split Markdown pages into heading-aware chunks that fit the embedder's token window."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tandem.documents import Chunk, Page
from tandem.errors import BadInput
from tandem.indexing.loader import load_release
from tandem.indexing.sections import Block, normalise, parse_sections
from tandem.stores.docs import point_id

TokenCounter = Callable[[str], int]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_FENCE = re.compile(r"^\s*(?:`{3,}|~{3,})")


@dataclass(frozen=True)
class _Budget:
    """Whether a text, placed under `heading`, still fits the token limit."""

    heading: str
    count_tokens: TokenCounter
    max_tokens: int

    def fits(self, text: str) -> bool:
        embed_text = Chunk(file="", heading=self.heading, text=text).embed_text
        return self.count_tokens(embed_text) <= self.max_tokens


def _same(text: str) -> str:
    return text


def _greedy(
    units: Sequence[str], sep: str, budget: _Budget, wrap: Callable[[str], str] = _same
) -> list[str]:
    """Pack consecutive units into as few parts as fit; a unit too big alone is its own part."""
    parts: list[str] = []
    current: list[str] = []
    for unit in units:
        if current and not budget.fits(wrap(sep.join([*current, unit]))):
            parts.append(wrap(sep.join(current)))
            current = []
        current.append(unit)
    if current:
        parts.append(wrap(sep.join(current)))
    return parts


def _split_code(text: str, budget: _Budget) -> list[str]:
    """Split between lines, re-opening (after any admonition label) and closing the fence."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if _FENCE.match(line)) + 1
    opening, body, closing = lines[:start], lines[start:-1], lines[-1]
    if len(body) < 2:
        return [text]

    def fenced(part: str) -> str:
        return "\n".join([*opening, part.strip("\n"), closing])

    return _greedy(body, "\n", budget, fenced)


def _split_table(text: str, budget: _Budget) -> list[str]:
    """Split between rows, repeating the header row and separator in every part."""
    lines = text.split("\n")
    header, rows = lines[:2], lines[2:]
    if len(rows) < 2:
        return [text]

    def headed(part: str) -> str:
        return "\n".join([*header, part])

    return _greedy(rows, "\n", budget, headed)


_PROSE_LEVELS: tuple[tuple[str, Callable[[str], list[str]]], ...] = (
    ("\n", lambda text: text.split("\n")),
    (" ", lambda text: _SENTENCE_END.split(text.strip())),
    (" ", str.split),
)


def _split_prose(text: str, budget: _Budget, level: int = 0) -> list[str]:
    """Split between lines, then sentences, then words: only as fine as the budget needs."""
    sep, split = _PROSE_LEVELS[level]
    units = [unit for unit in split(text) if unit.strip()]
    if level + 1 < len(_PROSE_LEVELS):
        units = [
            piece
            for unit in units
            for piece in ([unit] if budget.fits(unit) else _split_prose(unit, budget, level + 1))
        ]
    return _greedy(units, sep, budget)


def _split_block(block: Block, budget: _Budget) -> list[str]:
    if budget.fits(block.text):
        return [block.text]
    if block.kind == "code":
        return _split_code(block.text, budget)
    if block.kind == "table":
        return _split_table(block.text, budget)
    return _split_prose(block.text, budget)


def _pack_section(blocks: Sequence[Block], budget: _Budget) -> list[str]:
    pieces = [piece for block in blocks for piece in _split_block(block, budget)]
    return [normalise(part) for part in _greedy(pieces, "\n\n", budget)]


def chunk_page(
    page: Page, release: str, count_tokens: TokenCounter, max_tokens: int = 220
) -> list[Chunk]:
    """Heading-aware chunks of one page; each `embed_text` fits `max_tokens` where splittable."""
    if max_tokens < 1:
        raise BadInput(f"max_tokens must be at least 1, got {max_tokens}")
    chunks: list[Chunk] = []
    for section in parse_sections(page.text, PurePosixPath(page.file).stem):
        heading = " > ".join(section.path)
        budget = _Budget(heading, count_tokens, max_tokens)
        for text in _pack_section(section.blocks, budget):
            chunks.append(Chunk(page.file, heading, text, release, section.anchor))
    return chunks


def chunk_release(
    pages: Iterable[Page], release: str, count_tokens: TokenCounter, max_tokens: int = 220
) -> list[Chunk]:
    """Chunks of every page, in page order."""
    return [
        chunk for page in pages for chunk in chunk_page(page, release, count_tokens, max_tokens)
    ]


def _unique(chunks: Sequence[Chunk]) -> list[Chunk]:
    seen: dict[str, Chunk] = {}
    for chunk in chunks:
        seen.setdefault(point_id(chunk), chunk)
    return list(seen.values())


@dataclass(frozen=True)
class LoadedRelease:
    """A release folder read and chunked: its page count and its distinct chunks."""

    pages: int
    chunks: list[Chunk]


def load_chunks(folder: Path, release: str, count_tokens: TokenCounter) -> LoadedRelease:
    """Read `folder`'s pages and chunk them (one chunk per point id); BadInput if no text."""
    pages = load_release(folder)
    chunks = _unique(chunk_release(pages, release, count_tokens))
    if not chunks:
        raise BadInput(f"{folder} produced no text to index")
    return LoadedRelease(len(pages), chunks)
