"""What a question is about: the nouns of its asking sentence, not of the customer's setup.

Customers write "I run paperless on my Synology with a Fujitsu scanner and my bank is ING.
How do I get the mail rules to put labels on my post?" — the bank, the board and the scanner
are context; the question is about mail rules and labels. A dependency parse finds the
asking sentence (a `?`, or a question word or auxiliary at its start; else the last
sentence) and, in it, the nouns and proper nouns the question's verbs reach: objects,
subjects, prepositional objects and their compounds. The asking sentences alone are also a
second query for the cross-encoder, which reads a long story less well than a question.
The outcome decision checks those terms against the release's vocabulary: a subject the
docs never use ("QuickBooks", "e-signature") means the docs do not answer the question,
whatever words of the setup they share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

_QUESTION_START = frozenset(
    """how what which where when why who whom whose can could does do did is are was were
    will would should shall may might has have must any""".split()
)
_CORE = frozenset({"dobj", "nsubj", "nsubjpass", "pobj", "attr", "compound", "conj", "appos"})
_CORE |= {"npadvmod", "oprd", "dative", "ROOT", "xcomp", "ccomp", "advcl", "acomp", "amod"}
_NOUNS = frozenset({"NOUN", "PROPN", "X"})


class Parser(Protocol):
    """spaCy's `Language` as far as the subject finder uses it (a callable returning a Doc)."""

    def __call__(self, text: str) -> Any: ...


def asking_sentences(doc: Any) -> list[Any]:
    """The sentences that ask: end with `?` or start with a question word; else the last."""
    sentences = [s for s in doc.sents if s.text.strip()]
    asking = [
        s for s in sentences if s.text.rstrip().endswith("?") or s[0].lower_ in _QUESTION_START
    ]
    return asking or sentences[-1:]


@dataclass(frozen=True)
class Reading:
    """What the parse says of a question: the sentences that ask, and their subject words."""

    asking: str
    subject: list[str]


def read(doc: Any) -> Reading:
    """The asking sentences and their nouns and names (lower-cased, each once, in order)."""
    sentences = asking_sentences(doc)
    words: list[str] = []
    for sentence in sentences:
        for token in sentence:
            if token.pos_ in _NOUNS and token.dep_ in _CORE and not token.is_stop:
                words.append(token.text.lower())
    subject = list(dict.fromkeys(w for w in words if any(c.isalpha() for c in w)))
    return Reading(" ".join(s.text.strip() for s in sentences), subject)


def read_question(parser: Parser, question: str) -> Reading:
    """The reading of `question` (see the module docstring)."""
    return read(parser(question))


def unknown(words: Iterable[str], known: Any) -> tuple[str, ...]:
    """The words `known` (a term -> count mapping, or a set) does not hold: neither the whole
    (`e-signature`) nor every part (a setting name must be known whole)."""
    from tandem.rag.sparse import tokenize

    missing = []
    for word in words:
        terms = tokenize(word)
        compounds = [t for t in terms if any(c in t for c in "_.-")]
        parts = [t for t in terms if t not in compounds]
        # a setting name (PAPERLESS_MAX_UPLOAD_SIZE) exists only whole; "e-mail" in parts too
        whole_only = "_" in word
        held = any(t in known for t in compounds) or (
            not whole_only and bool(parts) and all(t in known for t in parts)
        )
        if terms and not held:
            missing.append(word)
    return tuple(missing)
