"""Group a page's Markdown events into sections (heading path + blocks of clean text)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tandem.indexing.markdown_inline import clean_inline
from tandem.indexing.markdown_reader import CodeBlock, Heading, TextLine, read_events

BlockKind = Literal["text", "table", "code"]

_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")


@dataclass(frozen=True)
class Block:
    """A unit that is never split unless it alone is over budget: paragraph, table or code."""

    kind: BlockKind
    text: str


@dataclass(frozen=True)
class Section:
    """The text under one heading, up to the next heading of any level."""

    path: tuple[str, ...]
    anchor: str | None
    blocks: tuple[Block, ...]


def normalise(text: str) -> str:
    """No trailing spaces, no runs of blank lines, no blank lines at either end."""
    lines = [line.rstrip() for line in text.split("\n")]
    kept = [line for i, line in enumerate(lines) if line or (i > 0 and lines[i - 1])]
    return "\n".join(kept).strip("\n")


def _table_row(line: str) -> str:
    row = " ".join(line.split())
    return re.sub(r"-{3,}", "---", row) if _TABLE_SEPARATOR.match(row) else row


def _make_block(kind: BlockKind, lines: Sequence[str]) -> Block:
    text = "\n".join(lines)
    if kind != "code":
        text = clean_inline(text)
    text = textwrap.dedent("\n".join(line.rstrip() for line in text.split("\n")))
    if kind == "table":
        text = "\n".join(_table_row(line) for line in text.split("\n"))
    return Block(kind, normalise(text))


def _table_at(lines: Sequence[str], i: int) -> int:
    """Index just past the table that starts at line `i`, or `i` when none starts there."""
    if i + 1 >= len(lines) or "|" not in lines[i] or not _TABLE_SEPARATOR.match(lines[i + 1]):
        return i
    end = i + 2
    while end < len(lines) and "|" in lines[end]:
        end += 1
    return end


def _paragraph_blocks(lines: Sequence[str]) -> list[Block]:
    """A run of non-blank lines, with any tables in it pulled out as their own blocks."""
    blocks: list[Block] = []
    start = i = 0
    while i < len(lines):
        end = _table_at(lines, i)
        if end == i:
            i += 1
            continue
        blocks += [_make_block("text", lines[start:i]), _make_block("table", lines[i:end])]
        start = i = end
    blocks.append(_make_block("text", lines[start:]))
    return blocks


def _blocks(body: Sequence[TextLine | CodeBlock]) -> tuple[Block, ...]:
    blocks: list[Block] = []
    run: list[str] = []
    for item in body:
        if isinstance(item, TextLine) and item.text.strip():
            run.append(item.text)
            continue
        blocks += _paragraph_blocks(run)
        run = []
        if isinstance(item, CodeBlock):
            blocks.append(_make_block("code", item.lines))
    blocks += _paragraph_blocks(run)
    return tuple(block for block in blocks if block.text)


def _section(stack: Sequence[Heading], body: Sequence[TextLine | CodeBlock]) -> Section:
    return Section(tuple(h.title for h in stack), stack[-1].anchor, _blocks(body))


def parse_sections(text: str, root: str) -> list[Section]:
    """Sections with text, in page order; `root` heads the path when the page has no H1."""
    events = read_events(text)
    first_h1 = next((e for e in events if isinstance(e, Heading) and e.level == 1), None)
    stack = [Heading(1, first_h1.title if first_h1 else root, None)]
    sections: list[Section] = []
    body: list[TextLine | CodeBlock] = []
    for event in events:
        if isinstance(event, Heading):
            sections.append(_section(stack, body))
            stack = [*(h for h in stack if h.level < event.level), event]
            body = []
        else:
            body.append(event)
    sections.append(_section(stack, body))
    return [section for section in sections if section.blocks]
