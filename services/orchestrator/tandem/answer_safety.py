"""What an answer may carry to the customer (OWASP LLM01, the output side).

A poisoned page or a customer can talk the model into markup that leaks data when rendered
(a remote image whose URL carries the conversation), raw HTML, links to hosts of theirs, or
the system prompt itself. The answer is neutralised before it leaves the API:
images become their alt text, HTML tags go, links and bare URLs survive only to hosts the
operator allows (`TANDEM_LINK_HOSTS`; relative links always), and a line quoting the system
prompt is cut where the quote starts. Hosts named in the retrieved docs are not trusted: a
poisoned page would vouch for its own host (bench/bench_injection.py measured exactly that).
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
_COMPLETE_WORD = re.compile(r"\S*\s+")
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


def quote_start(line: str) -> int | None:
    """Where in `line` a quote of the system prompt begins, if it holds one."""
    words = list(_WORD.finditer(line.lower()))
    for i in range(len(words) - LEAK_WINDOW + 1):
        if tuple(w.group(0) for w in words[i : i + LEAK_WINDOW]) in _PROMPT_WINDOWS:
            return words[i].start()
    return None


def _cut_quotes(line: str) -> str:
    start = quote_start(line)
    return line if start is None else line[:start]


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


def _quote_prefix(words: list[str]) -> int:
    """How many of the last `words` could begin a quote of the system prompt (they wait)."""
    for held in range(min(len(words), LEAK_WINDOW - 1), 0, -1):
        tokens = tuple(_WORD.findall("".join(words[-held:]).lower()))
        if not tokens or tokens in _PROMPT_STARTS or len(tokens) >= LEAK_WINDOW:
            return held  # (a word without letters, or several in one, waits to be safe)
    return 0


def _first_markup(text: str) -> int:
    """Where the first thing `sanitize` might change starts (a closed `[n]` citation is not)."""
    masked = _CITATION.sub(lambda m: "#" * len(m.group(0)), text)
    found = _MARKUP.search(masked)
    return found.start() if found else len(text)


class StreamSanitizer:
    """`sanitize` over a stream of deltas: text goes out once nothing later can change it.

    Plain words leave once complete, except the last few when they could begin a quote of the
    system prompt: those wait until the next word shows they do not (a quote cuts the rest
    of its line). From the first markup on (`<`, `[` other than a closed citation,
    `//`, `www.`) the line waits for its end, so a link or tag split across deltas is judged
    in one piece.
    """

    def __init__(self, hosts: set[str]) -> None:
        self.hosts = hosts
        self.pending = ""  # the current line, not sent yet
        self.quoting = False  # the current line quotes the system prompt: drop it

    def feed(self, delta: str) -> str:
        out = []
        self.pending += delta
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            if not self.quoting:
                out.append(sanitize(line, self.hosts))
            out.append("\n")
            self.quoting = False
        out.append(self._words())
        return "".join(out)

    def _words(self) -> str:
        """The words of the current line that are safe to send now."""
        if self.quoting:
            self.pending = ""
            return ""
        plain = self.pending[: _first_markup(self.pending)]  # what nothing later can change
        if (start := quote_start(plain)) is not None:  # the rest of the line goes
            ready, self.quoting, self.pending = plain[:start], True, ""
            return ready
        words = _COMPLETE_WORD.findall(plain)
        ready = "".join(words[: len(words) - _quote_prefix(words)])
        self.pending = self.pending[len(ready) :]
        return ready

    def flush(self) -> str:
        out = "" if self.quoting else sanitize(self.pending, self.hosts)
        self.pending, self.quoting = "", False
        return out
