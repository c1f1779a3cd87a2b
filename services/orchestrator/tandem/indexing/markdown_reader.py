"""Read MkDocs-flavoured Markdown line by line into headings, text lines and code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tandem.indexing.markdown_inline import clean_heading, slugify


@dataclass(frozen=True)
class Heading:
    """A heading: its level (1-6), plain title and the id a link can point at."""

    level: int
    title: str
    anchor: str | None


@dataclass(frozen=True)
class TextLine:
    """A line outside code, with comments, snippets, macros and admonition markers gone."""

    text: str


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block, fences included and always balanced; may start with a label line."""

    lines: tuple[str, ...]


Event = Heading | TextLine | CodeBlock

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
_ADMONITION = re.compile(r"^(\s*)(?:!!!|\?\?\?\+?)[ \t]+([\w-]+)(.*)$")
_QUOTED = re.compile(r'"(.*)"')
_CONTENT_TAB = re.compile(r'^(\s*)===\+?[ \t]+"(.*)"\s*$')
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_HTML_HEADING = re.compile(r"^ {0,3}<h([1-6])\b([^>]*)>(.*?)</h\1>\s*$", re.IGNORECASE)
_HTML_ID = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")
_SETEXT = re.compile(r"^ {0,3}(=+|-{2,})\s*$")
_NOT_PLAIN = re.compile(r"^\s*(?:[-*+][ \t]|\d+[.)][ \t]|\||<|>|:)")
_DROPPED = re.compile(r"^\s*(?:\{%.*%\}|--8<--.*|([-*_])(?:[ \t]*\1){2,})\s*$")
_SNIPPET = re.compile(r"^\s*--8<--")


@dataclass
class _Fence:
    marker: str
    indent: str
    lines: list[str]
    label: list[str]


@dataclass
class _Box:
    """An admonition or content tab; its label waits to be put before the first body line."""

    body_indent: int
    label_indent: int
    label: str | None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(line: str, width: int) -> str:
    return line[min(width, _indent(line)) :]


def _box_label(line: str) -> tuple[int, str] | None:
    """Indent and plain-text label of an admonition or content-tab opener, if it is one."""
    admonition = _ADMONITION.match(line)
    if admonition:
        kind = admonition.group(2).replace("-", " ").capitalize()
        title = _QUOTED.search(admonition.group(3))
        if title and title.group(1).strip():
            return len(admonition.group(1)), f"{kind}: {title.group(1).strip()} —"
        return len(admonition.group(1)), f"{kind}:"
    tab = _CONTENT_TAB.match(line)
    return (len(tab.group(1)), f"{tab.group(2).strip()}:") if tab else None


@dataclass
class _Reader:
    """The state machine: an open code fence, open admonitions/tabs, an open HTML comment."""

    events: list[Event] = field(default_factory=list)
    boxes: list[_Box] = field(default_factory=list)
    fence: _Fence | None = None
    in_comment: bool = False
    anchors: set[str] = field(default_factory=set)

    def feed(self, raw: str) -> None:
        line = raw.expandtabs(4).rstrip()
        if self.fence is None:
            line = self._strip_comments(line)
        if line and self.boxes:
            self._close_boxes(_indent(line))
        line = _dedent(line, 4 * len(self.boxes))
        if self.fence is not None:
            self._feed_code(line)
        elif not (self._heading(line) or self._open_box(line) or self._open_fence(line)):
            self._emit("" if _DROPPED.match(line) else line)

    def finish(self) -> list[Event]:
        self._close_boxes(0)
        if self.fence is not None:
            self._flush_fence()
        return self.events

    def _strip_comments(self, line: str) -> str:
        if self.in_comment:
            end = line.find("-->")
            if end < 0:
                return ""
            line, self.in_comment = line[end + 3 :], False
        line = re.sub(r"<!--.*?-->", "", line)
        start = line.find("<!--")
        if start >= 0:
            line, self.in_comment = line[:start], True
        return line.rstrip()

    def _close_boxes(self, indent: int) -> None:
        while self.boxes and indent < self.boxes[-1].body_indent:
            if self.fence is not None:  # a box ends its code block too
                self._flush_fence()
            self._release_label()
            self.boxes.pop()
            self.events.append(TextLine(""))

    def _take_label(self) -> list[str]:
        box = self.boxes[-1] if self.boxes else None
        if box is None or box.label is None:
            return []
        label, box.label = " " * box.label_indent + box.label, None
        return [label]

    def _release_label(self) -> None:
        self.events.extend(TextLine(label) for label in self._take_label())

    def _emit(self, line: str) -> None:
        box = self.boxes[-1] if self.boxes else None
        if box is not None and box.label is not None and line.strip():
            if line.lstrip().startswith("|"):
                self._release_label()
            else:
                line = f"{' ' * box.label_indent}{box.label} {line.strip()}"
                box.label = None
        self.events.append(TextLine(line))

    def _open_box(self, line: str) -> bool:
        opener = _box_label(line)
        if opener is None:
            return False
        self._release_label()
        indent, label = opener
        self.events.append(TextLine(""))
        self.boxes.append(_Box(4 * len(self.boxes) + indent + 4, indent, label))
        return True

    def _open_fence(self, line: str) -> bool:
        found = _FENCE.match(line)
        if found is None or (found.group(2)[0] == "`" and "`" in found.group(3)):
            return False
        # the label travels with the code, so "Warning:" is never cut off from what it warns of
        self.fence = _Fence(found.group(2), found.group(1), [line], self._take_label())
        return True

    def _feed_code(self, line: str) -> None:
        fence = self.fence
        assert fence is not None
        stripped = line.strip()
        if stripped and set(stripped) == {fence.marker[0]} and len(stripped) >= len(fence.marker):
            fence.lines.append(line)
            self._flush_fence(closed=True)
        elif not _SNIPPET.match(line):  # snippet includes cannot be resolved here
            fence.lines.append(line)

    def _flush_fence(self, closed: bool = False) -> None:
        fence = self.fence
        assert fence is not None
        self.fence = None
        lines = fence.lines if closed else [*fence.lines, fence.indent + fence.marker]
        if any(body.strip() for body in lines[1:-1]):
            self.events.append(CodeBlock(tuple([*fence.label, *lines])))
        else:
            self.events.extend(TextLine(label) for label in fence.label)

    def _heading(self, line: str) -> bool:
        if self.boxes:
            return False
        atx = _ATX.match(line)
        if atx:
            return self._push_heading(len(atx.group(1)), atx.group(2) or "")
        html = _HTML_HEADING.match(line)
        if html:
            explicit = _HTML_ID.search(html.group(2))
            anchor = explicit.group(1) if explicit else None
            return self._push_heading(int(html.group(1)), html.group(3), anchor)
        return self._setext(line)

    def _setext(self, line: str) -> bool:
        underline = _SETEXT.match(line)
        previous = self.events[-1] if self.events else None
        if underline is None or not isinstance(previous, TextLine):
            return False
        before = self.events[-2] if len(self.events) > 1 else None
        text = previous.text
        if not text.strip() or _indent(text) > 3 or _NOT_PLAIN.match(text):
            return False
        if isinstance(before, TextLine) and before.text.strip():
            return False  # only a one-line paragraph; longer ones are rare and ambiguous
        self.events.pop()
        return self._push_heading(1 if underline.group(1)[0] == "=" else 2, text)

    def _push_heading(self, level: int, raw: str, explicit: str | None = None) -> bool:
        title, attr_id = clean_heading(raw)
        if title:
            self.events.append(Heading(level, title, self._anchor(explicit or attr_id, title)))
        return True

    def _anchor(self, explicit: str | None, title: str) -> str | None:
        anchor = explicit or slugify(title)
        if not anchor:
            return None
        if not explicit:
            base, n = anchor, 0
            while anchor in self.anchors:
                n += 1
                anchor = f"{base}_{n}"
        self.anchors.add(anchor)
        return anchor


def read_events(text: str) -> list[Event]:
    """Headings, text lines and code blocks of one page, in order."""
    reader = _Reader()
    for line in _FRONT_MATTER.sub("", text, count=1).split("\n"):
        reader.feed(line)
    return reader.finish()
