"""Copy-style (extractive) answers: the right block's own sentences and list items, verbatim.

The 135M model garbles what it restates, so the copy-style data teaches it to quote: the
opening is one or two sentences lifted from the right block (those holding most of the
item's answer terms), and a procedure's `Steps:` are the block's own list items. Only
Markdown emphasis and admonition labels are dropped; every word, number and name is kept.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*+])\s+(\S.*)$")
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
# "Note: Large exports — ", "Warning: ": the reader's rendering of an admonition's label.
_ADMONITION = re.compile(
    r"^(?:Note|Warning|Tip|Important|Info|Caution|Danger|Question|Example):\s+"
    r"(?:[^—\n.]{1,60}?\s—\s)?"
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"(])")
_TERM = re.compile(r"[a-z0-9]+(?:[.,:][0-9]+)*")
_STOP = frozenset(
    "the and for you your are can with from that this into when then will not but has have "
    "its was were been any all one also only more than each per use "
    "to of in on is it an as at be by or if we do no so up my me us".split()
)
MAX_OPENING_WORDS = 70  # two sentences of a block, well under the house limit of 180 words
MIN_TERMS = 2  # an opening sentence must add at least this weight of answer terms
NUMBER_WEIGHT = 3  # numbers are the facts the model garbles most, and what customers ask
MIN_NUMBERS = 0.5  # a quote must hold this share of the answer's numbers, or it is not used
MIN_STEPS_MATCH = 0.3  # share of the item's step terms a block's list must hold to be its steps


@dataclass(frozen=True)
class Unit:
    """A sentence or list item of a context block; `number` is the block's [n]."""

    text: str
    number: int
    position: int
    list_id: int | None = None  # the block's n-th list, for list items


def answer_terms(text: str) -> set[str]:
    """Content words and every number of `text`, lower-cased."""
    return {
        t
        for t in _TERM.findall(text.lower())
        if any(ch.isdigit() for ch in t) or (len(t) > 1 and t not in _STOP)
    }


def _numbers(terms: set[str]) -> set[str]:
    return {t for t in terms if any(ch.isdigit() for ch in t)}


def _weight(terms: set[str]) -> int:
    return len(terms) + (NUMBER_WEIGHT - 1) * len(_numbers(terms))


def clean(text: str) -> str:
    """The text as a customer reads it: without emphasis markers or an admonition label."""
    text = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text.strip())
    return _ADMONITION.sub("", text).strip()


def block_units(text: str, number: int) -> list[Unit]:
    """Sentences of the prose and items of the lists of one block; code and tables skipped.

    A list ends at prose, code or a table, or where numbered items give way to bullets (or
    back); indented items stay in the list they are nested in.
    """
    units: list[Unit] = []
    in_code, lists, kind = False, 0, ""  # kind: "1" or "-" while in a list, else ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code, kind = not in_code, ""
            continue
        if not line.strip():
            continue  # a blank line between items does not end a list
        if in_code or line.lstrip().startswith("|"):
            kind = ""
            continue
        item = _LIST_ITEM.match(line)
        if item is None:
            kind = ""
            for sentence in _SENTENCE_BREAK.split(clean(line)):
                if sentence.strip():
                    units.append(Unit(sentence.strip(), number, len(units)))
            continue
        marker = "1" if line.lstrip()[0].isdigit() else "-"
        if not kind or (marker != kind and not line[0].isspace()):
            lists, kind = lists + 1, marker
        units.append(Unit(clean(item.group(1)), number, len(units), lists))
    return units


def _overlap(unit: Unit, terms: set[str]) -> set[str]:
    return answer_terms(unit.text) & terms


def steps_list(units: Sequence[Unit], steps: Sequence[str]) -> list[Unit]:
    """The block list that best matches the item's steps (at least two items), or none."""
    step_terms = answer_terms(" ".join(steps))
    lists: dict[tuple[int, int], list[Unit]] = {}
    for unit in units:
        if unit.list_id is not None:
            lists.setdefault((unit.number, unit.list_id), []).append(unit)
    best: list[Unit] = []
    best_share = MIN_STEPS_MATCH
    for items in lists.values():
        held = set().union(*(answer_terms(u.text) for u in items)) & step_terms
        share = len(held) / max(1, len(step_terms))
        if len(items) >= 2 and share >= best_share:
            best, best_share = items, share + 1e-9  # ties keep the earlier list
    return best


def opening(units: Sequence[Unit], answer: str, taken: Sequence[Unit]) -> list[Unit]:
    """One or two units holding most of the answer's terms, in the block's own order."""
    terms = answer_terms(answer)
    pool = [u for u in units if u not in taken]
    chosen: list[Unit] = []
    for _ in range(2):
        covered = set().union(*(_overlap(u, terms) for u in chosen))
        scored = [(_weight(_overlap(u, terms) - covered), -u.number, -u.position, u) for u in pool]
        scored = [s for s in scored if s[3] not in chosen]
        if not scored:
            break
        gain, *_, unit = max(scored, key=lambda s: s[:3])
        words = sum(len(u.text.split()) for u in chosen) + len(unit.text.split())
        if gain < MIN_TERMS or words > MAX_OPENING_WORDS:
            break
        chosen.append(unit)
    return sorted(chosen, key=lambda u: (u.number, u.position))


@dataclass(frozen=True)
class Quote:
    """What an answer quotes: its opening units and the units of its `Steps:` list."""

    opening: list[Unit]
    steps: list[Unit]

    def sources(self, opening: Sequence[Unit]) -> list[int]:
        """The block numbers the quoted units come from."""
        return sorted({u.number for u in [*opening, *self.steps]})


def quote(
    blocks: Sequence[str], cited: Sequence[int], answer: str, steps: Sequence[str]
) -> Quote | None:
    """What to quote from the cited blocks (texts of all blocks, `cited` 1-based), or None
    when no sentence of theirs holds the answer or most of its numbers (they sit in a table
    or in code)."""
    units = [u for n in cited for u in block_units(blocks[n - 1], n)]
    listed = steps_list(units, steps) if steps else []
    first = opening(units, answer, listed)
    wanted = _numbers(answer_terms(" ".join([answer, *steps])))
    held = _numbers(answer_terms(" ".join(u.text for u in [*first, *listed])))
    if not first or len(wanted & held) < MIN_NUMBERS * len(wanted):
        return None
    return Quote(first, listed)


_PREAMBLES = (
    "Hi, we have been using Kestrel with a small team for a few months now. {q} Thanks!",
    "Quick question from our office manager, who set up our workspace last year: {q}",
    "Hello support, I looked through the settings myself but could not work it out. {q}",
    "We're a design agency of about a dozen people trying Kestrel out. {q}",
    "Sorry if this has been asked before. {q} It's a bit urgent for us this week.",
    "My manager asked me to sort this out before our monthly billing run. {q}",
)


def customer_phrasing(question: str, rng: random.Random) -> str:
    """A short question wrapped the way a customer writes a ticket (context before, thanks)."""
    q = question.strip()
    q = q[:1].upper() + q[1:]
    if q[-1:] not in "?.!":
        q += "?"
    return rng.choice(_PREAMBLES).format(q=q)


def with_customer_phrasing(questions: list[str], rng: random.Random) -> list[str]:
    """The questions plus one longer, ticket-style phrasing of the shortest of them."""
    return [*questions, customer_phrasing(min(questions, key=len), rng)]
