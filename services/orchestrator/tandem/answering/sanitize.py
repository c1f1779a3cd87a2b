"""What an answer may carry to the customer (OWASP LLM01, the output side).

A poisoned page or a customer can talk the model into markup that leaks data when rendered
(a remote image whose URL carries the conversation), raw HTML, links to hosts of theirs, or
the system prompt itself. The answer is neutralised before it leaves the API:
images become their alt text, HTML tags go, links and bare URLs survive only to hosts the
operator allows (`TANDEM_LINK_HOSTS`; relative links always), and a line quoting the system
prompt is cut after the quote's first word (one word of the prompt tells nothing, and keeping
it lets a stream send an answer's first word, "The", "You", "A", as vLLM sends it instead of a
decode step later). Hosts named in the retrieved docs are not trusted: a poisoned page would
vouch for its own host (bench/bench_injection.py measured exactly that).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tandem.rag.prompt import SYSTEM_PROMPT

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"\n]*\")?\)")
_TAG = re.compile(r"</?[A-Za-z!][^>\n]*>")
_URL = re.compile(r"(?:https?:)?//[^\s<>()\[\]\"']+|www\.[^\s<>()\[\]\"']+", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")
_MARKUP = re.compile(r"[<\[]|//|www\.", re.IGNORECASE)
_CITATION = re.compile(r"\[[\d,\s]+\](?=[^(\[])")  # [1] or [1, 3], not followed by a link
LEAK_WINDOW = 5  # this many words of the system prompt in a row make a line a leak
REMOVED_LINK = "(link removed)"


def _host(url: str) -> str:
    if url.lower().startswith("www."):
        url = f"//{url}"
    return (urlsplit(url).hostname or "").lower()


def _allowed(url: str, hosts: set[str]) -> bool:
    if "//" not in url and not url.lower().startswith("www."):
        return not re.match(r"[a-z][a-z0-9+.-]*:", url, re.IGNORECASE)  # relative: no scheme
    host = _host(url)
    return any(host == h or host.endswith(f".{h}") for h in hosts)


def _windows(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + LEAK_WINDOW]) for i in range(len(words) - LEAK_WINDOW + 1)}


_PROMPT_WINDOWS = _windows(SYSTEM_PROMPT)
_PROMPT_STARTS = {w[:k] for w in _PROMPT_WINDOWS for k in range(1, LEAK_WINDOW)}
# the same with the last word unfinished ("the", "doc" could become "the documentation")
_PROMPT_OPEN_STARTS = {
    w[:k] + (w[k][:j],)
    for w in _PROMPT_WINDOWS
    for k in range(LEAK_WINDOW)
    for j in range(1, len(w[k]) + 1)
}
# an ending that more text could turn into markup: `![`, `//`, `http(s)://`, `www.`
_MARKUP_START = re.compile(r"(?:!|/|w{1,3}|h(?:t(?:t(?:ps?:?/?)?)?)?)$", re.IGNORECASE)


def _quote_words(line: str) -> list[re.Match[str]] | None:
    """The words of the first system-prompt quote in `line`, if it holds one."""
    words = list(_WORD.finditer(line.lower()))
    for i in range(len(words) - LEAK_WINDOW + 1):
        if tuple(w.group(0) for w in words[i : i + LEAK_WINDOW]) in _PROMPT_WINDOWS:
            return words[i : i + LEAK_WINDOW]
    return None


def quote_start(line: str) -> int | None:
    """Where in `line` a quote of the system prompt begins, if it holds one."""
    quote = _quote_words(line)
    return None if quote is None else quote[0].start()


def quote_cut(line: str) -> int | None:
    """Where a line quoting the system prompt is cut: at the quote's second word."""
    quote = _quote_words(line)
    return None if quote is None else quote[1].start()


def _cut_quotes(line: str) -> str:
    cut = quote_cut(line)
    return line if cut is None else line[:cut]


def sanitize(text: str, hosts: set[str]) -> str:
    """`text` without images, HTML, links to hosts outside `hosts`, or system-prompt lines."""
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _TAG.sub("", text)

    def link(match: re.Match[str]) -> str:
        return match.group(0) if _allowed(match.group(2), hosts) else match.group(1)

    text = _LINK.sub(link, text)
    pieces = _LINK.split(text)  # keep the allowed links whole; check URLs in the rest
    out = []
    for n, piece in enumerate(pieces):
        if n % 3 == 0:
            piece = _URL.sub(
                lambda m: m.group(0) if _allowed(m.group(0), hosts) else REMOVED_LINK, piece
            )
        out.append(piece)
    text = _relink(out)
    lines = text.split("\n")
    return "\n".join(_cut_quotes(line) for line in lines)


def _relink(pieces: list[str]) -> str:
    """Join what `_LINK.split` cut: text, then (label, url) pairs put back as links."""
    out = []
    for n in range(0, len(pieces), 3):
        out.append(pieces[n])
        if n + 2 < len(pieces):
            out.append(f"[{pieces[n + 1]}]({pieces[n + 2]})")
    return "".join(out)


def settled_end(plain: str) -> int:
    """How much of `plain` (a line up to its first markup) no later text can change.

    Not past the second word of what could still become a quote of the system prompt (its
    words so far, the last one perhaps unfinished: a quote is cut at its second word), nor
    past an ending that could grow into markup.
    """
    end = len(plain)
    if markup := _MARKUP_START.search(plain):
        end = markup.start()
    tokens = list(_WORD.finditer(plain.lower()))
    open_last = bool(tokens) and tokens[-1].end() == len(plain)  # it may still grow
    starts = _PROMPT_OPEN_STARTS if open_last else _PROMPT_STARTS
    for i in range(max(0, len(tokens) - LEAK_WINDOW), len(tokens) - 1):
        if tuple(t.group(0) for t in tokens[i:]) in starts:
            return min(end, tokens[i + 1].start())
    return end


def _first_markup(text: str) -> int:
    """Where the first thing `sanitize` might change starts (a closed `[n]` citation is not)."""
    masked = _CITATION.sub(lambda m: "#" * len(m.group(0)), text)
    found = _MARKUP.search(masked)
    return found.start() if found else len(text)


class StreamSanitizer:
    """`sanitize` over a stream of deltas: text goes out once nothing later can change it.

    Text leaves as soon as it arrives, unfinished words included, except the last few words
    after the first when they could continue a quote of the system prompt (a quote cuts the
    rest of its line from its second word) and an ending that could grow into markup
    (`settled_end`): those wait for the text that decides. So the first token of an answer
    goes out as vLLM sends it unless it could begin markup. From the
    first markup on (`<`, `[` other than a closed citation, `//`, `www.`) the line waits for
    its end, so a link or tag split across deltas is judged in one piece.
    """

    def __init__(self, hosts: set[str]) -> None:
        self.hosts = hosts
        self.line = ""  # the current line so far
        self.sent = 0  # how much of `line` went out already (nothing can change it)
        self.quoting = False  # the current line quotes the system prompt: drop the rest

    def feed(self, delta: str) -> str:
        out = []
        self.line += delta
        while "\n" in self.line:
            line, self.line = self.line.split("\n", 1)
            if not self.quoting:
                out.append(sanitize(line, self.hosts)[self.sent :])
            out.append("\n")
            self.sent, self.quoting = 0, False
        out.append(self._ready())
        return "".join(out)

    def _ready(self) -> str:
        """The part of the current line that is safe to send now (and was not sent yet)."""
        if self.quoting:
            return ""
        plain = self.line[: _first_markup(self.line)]  # what nothing later can change
        if (cut := quote_cut(plain)) is not None:  # the rest of the line goes
            self.quoting = True
            return plain[self.sent : cut]
        end = settled_end(plain)
        ready = plain[self.sent : end]
        self.sent = max(self.sent, end)
        return ready

    def flush(self) -> str:
        out = "" if self.quoting else sanitize(self.line, self.hosts)[self.sent :]
        self.line, self.sent, self.quoting = "", 0, False
        return out
