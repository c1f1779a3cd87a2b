"""Inline Markdown clean-up: links to their text, images and wrapper tags away, heading ids."""

from __future__ import annotations

import re
import unicodedata

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)\n]*\)(?:\{[^}\n]*\})?")
_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\((?:[^()\n]|\([^()\n]*\))*\)(?:\{[^}\n]*\})?")
_REF_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_REF_DEFINITION = re.compile(r"(?m)^ {0,3}\[(?!\^)[^\]\n]+\]:[ \t]+\S+[^\n]*$")
_BREAK = re.compile(r"<(?:br|hr)\s*/?>", re.IGNORECASE)
_WRAPPER_TAG = re.compile(
    r"</?(?:a|abbr|b|center|code|details|div|em|figcaption|figure|font|i|img|kbd|mark|p"
    r"|section|small|span|strong|sub|summary|sup|u)\b[^<>]*>",
    re.IGNORECASE,
)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)[^\n]+?(?<!`)\1(?!`)")
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>~])")  # `\|` stays: it keeps a table cell whole
_DEFINITION = re.compile(r"(?m)^( {0,3}):[ \t]+(?=\S)")
_HEADING_ATTRS = re.compile(r"\s*\{:?\s*([#.][^{}]*)\}\s*$")
_HEADING_ID = re.compile(r"#([\w:.-]+)")
_CLOSING_HASHES = re.compile(r"(?:^|\s+)#+\s*$")


def clean_inline(text: str) -> str:
    """Keep what a reader sees: link text, not URLs, images, wrapper tags or attribute lists."""
    spans: list[str] = []

    def hide(found: re.Match[str]) -> str:  # code spans are shown verbatim, never cleaned
        spans.append(found.group(0))
        return f"\ue000{len(spans) - 1}\ue001"

    text = _CODE_SPAN.sub(hide, text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _REF_DEFINITION.sub("", text)
    text = _BREAK.sub(" ", text)
    text = _DEFINITION.sub(r"\1", _WRAPPER_TAG.sub("", text))
    text = _ESCAPE.sub(r"\1", text)
    return _PLACEHOLDER.sub(lambda found: spans[int(found.group(1))], text)


def clean_heading(raw: str) -> tuple[str, str | None]:
    """Plain heading title and its explicit `{#id}`, if any."""
    explicit: str | None = None
    attrs = _HEADING_ATTRS.search(raw)
    if attrs:
        raw = raw[: attrs.start()]
        found = _HEADING_ID.search(attrs.group(1))
        explicit = found.group(1) if found else None
    raw = _CLOSING_HASHES.sub("", raw)
    text = clean_inline(raw)
    for marker in ("`", "~~", "**"):
        text = text.replace(marker, "")
    return " ".join(text.split()), explicit


def slugify(title: str) -> str:
    """The id MkDocs (Python-Markdown `toc`) gives a heading that has no explicit one."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)
