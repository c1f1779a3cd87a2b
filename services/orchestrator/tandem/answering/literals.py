"""The literal check: what an answer states verbatim must come from what it was given.

A literal is a number (prices, limits, versions, durations), a setting or environment name
(`PAPERLESS_OCR_MODE`, `ocr_mode`), a code identifier in backticks, a URL, a path or a quoted
UI label. Each must occur in the evidence: the context blocks the answer was given (text,
headings, files), the release name and the customer's own turns (repeating their "3 users" is
not an invented fact). Matching is normalised: case, thousands separators, a leading `v` or
currency sign, surrounding quotes; a number the blocks spell as a word ("ten") counts.

`LiteralCheck` has the filters' `feed` / `flush` shape for a stream (it passes text through:
a streamed sentence is already on the customer's screen, so `done` reports what it found);
`remove_unsupported` drops the sentences carrying one from a whole answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

UNSUPPORTED_LITERAL = "unsupported_literal"

_CITATION = re.compile(r"\[\d+\]")
_LIST_NUMBER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.MULTILINE)
_SOURCES_LINE = re.compile(r"^\s*Sources:.*$", re.MULTILINE)
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+")
_PATH = re.compile(r"(?<![\w/.:])(?:~|\.{1,2})?/(?:[\w.-]+/)*[\w.-]*[\w-]")
_BACKTICK = re.compile(r"`([^`\n]{1,80})`")
_CONSTANT = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_QUOTED = re.compile(r"[\"“]([^\"”\n]{1,60})[\"”]")
_NUMBER = re.compile(r"(?<![\w.\-/])[$€£]?v?\d+(?:[.,:]\d+)*%?")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"(?<=[^\d\s][.?!])\s+(?=[A-Z\"“`(])")  # not after a list number
_NUMBER_WORDS = {
    word: str(n)
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def _number(token: str) -> str:
    """'$1,000' -> '1000', 'v3.0.5' -> '3.0.5', '25%' -> '25'."""
    bare = token.lstrip("$€£").lstrip("v").rstrip("%")
    return bare.replace(",", "") if _THOUSANDS.match(bare) else bare


def _text(value: str) -> str:
    return _SPACE.sub(" ", value.casefold().strip(" \"'`“”‘’"))


def _stripped(answer: str) -> str:
    """The answer without what is not a claim: citation markers, list numbers, Sources."""
    text = _SOURCES_LINE.sub("", answer)
    return _LIST_NUMBER.sub(r"\1", _CITATION.sub("", text))


def literals(answer: str) -> list[str]:
    """The literals an answer states, in order, each once (as written)."""
    text = _stripped(answer)
    found: list[str] = []
    for pattern in (_URL, _PATH, _BACKTICK, _CONSTANT, _SNAKE, _QUOTED):
        for match in pattern.finditer(text):
            found.append(match.group(match.lastindex or 0).rstrip(".,;:!?"))
    without_text = _URL.sub(" ", _BACKTICK.sub(" ", _PATH.sub(" ", text)))
    found.extend(m.group(0).rstrip(".,:") for m in _NUMBER.finditer(without_text))
    return [f for f in dict.fromkeys(found) if f.strip(" \"'`")]


@dataclass(frozen=True)
class Evidence:
    """What an answer may quote: normalised text and the numbers it contains."""

    text: str
    numbers: frozenset[str]

    @classmethod
    def of(cls, parts: Iterable[str]) -> Evidence:
        joined = "\n".join(parts)
        numbers = {_number(m.group(0).rstrip(".,:")) for m in _NUMBER.finditer(joined)}
        numbers.update(_NUMBER_WORDS[w.lower()] for w in _NUMBER_WORD.findall(joined))
        return cls(_text(joined), frozenset(numbers))

    def supports(self, literal: str) -> bool:
        if _NUMBER.fullmatch(literal):
            return _number(literal) in self.numbers
        return _text(literal) in self.text


@dataclass
class LiteralCheck:
    """Finds the literals of a (streamed) answer that the evidence does not contain."""

    evidence: Evidence
    unsupported: list[str] = field(default_factory=list)
    _seen: list[str] = field(default_factory=list)

    def feed(self, text: str) -> str:
        self._seen.append(text)
        return text

    def flush(self) -> str:
        self.unsupported = unsupported(self.evidence, "".join(self._seen))
        return ""


def unsupported(evidence: Evidence, answer: str) -> list[str]:
    """The answer's literals the evidence does not contain."""
    return [literal for literal in literals(answer) if not evidence.supports(literal)]


def remove_unsupported(evidence: Evidence, answer: str) -> tuple[str, list[str]]:
    """The answer without the sentences (or list items) that carry an unsupported literal."""
    missing = unsupported(evidence, answer)
    if not missing:
        return answer, []
    kept_lines = []
    for line in answer.split("\n"):
        if _SOURCES_LINE.match(line):
            kept_lines.append(line)
            continue
        sentences = [s for s in _SENTENCE.split(line) if not unsupported(evidence, s)]
        if sentences or not line.strip():
            kept_lines.append(" ".join(sentences))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip()
    return text, missing


def has_claims(answer: str) -> bool:
    """Something besides a `Steps:` header and the Sources line is left."""
    body = _SOURCES_LINE.sub("", answer).replace("Steps:", "")
    return bool(body.strip())
