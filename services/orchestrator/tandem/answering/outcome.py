"""The outcome of a chat turn, decided before generation: answered, suggested or declined.

- `answered`: the blocks hold the answer strongly enough to generate from them, cited.
- `suggested`: the question is about the product but the evidence is not strong enough to
  let the model write claims; the customer gets the house sentence and the closest pages.
- `declined`: off-topic: nothing relevant retrieved (weak evidence and a low similarity, or
  weak evidence about a subject the release never mentions at all: "the capital of France").

Signals (bench/bench_outcomes.py measures them on customer-voice and short questions and
calibrates the thresholds on the calibration split only):
- `evidence`: the cross-encoder's best score over the retrieved blocks (question and block
  read together); below `min_evidence`, the better of that and the score of the asking
  sentences alone (a model trained on short queries reads a customer's long story less
  well). It does not reorder the blocks: reordering the top 8 by it put the right page in
  the top 4 less often than hybrid retrieval's own order (bench/bench_outcomes.py);
- `similarity`: the best dense cosine of a retrieved block;
- `unknown_subject`: the words of what the question asks about (`answering/subject.py`) that
  the serving release never uses — a feature, product or platform the docs do not cover;
  a very strong `evidence` (`subject_override`) answers all the same (the customer's own
  word for something the docs name otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tandem.answering.subject import Reading
from tandem.answering.subject import unknown as unknown_words
from tandem.answering.vocabulary import ReleaseVocabulary
from tandem.documents import ScoredChunk
from tandem.rag.cross_encoder import PairScorer
from tandem.rag.retriever import Retrieval, Retriever
from tandem.settings import AnsweringSettings

Outcome = Literal["answered", "suggested", "declined"]
ANSWERED: Outcome = "answered"
SUGGESTED: Outcome = "suggested"
DECLINED: Outcome = "declined"
# why a question was not answered (`abstained` in the response)
OFF_TOPIC = "off_topic"
WEAK_EVIDENCE = "weak_evidence"
UNKNOWN_SUBJECT = "unknown_subject"
MODEL_FALLBACK = "model_fallback"  # answered was decided, the model wrote the house sentence
NO_CLAIMS_LEFT = "unsupported_literals"  # every generated claim failed the literal check


class QuestionReader(Protocol):
    """What a question asks and about what (see `answering/subject.py`)."""

    def __call__(self, question: str) -> Reading: ...


@dataclass(frozen=True)
class Signals:
    similarity: float
    evidence: float | None  # None without a cross-encoder
    subject: tuple[str, ...] = ()
    unknown_subject: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str | None  # None when answered
    signals: Signals


def decide(signals: Signals, settings: AnsweringSettings) -> tuple[Outcome, str | None]:
    """The rule on the signals (the bench calibrates its thresholds on precomputed signals)."""
    evidence = signals.evidence if signals.evidence is not None else settings.min_evidence
    nothing_known = bool(signals.subject) and signals.unknown_subject == signals.subject
    weak = evidence < settings.declined_evidence
    if weak and (signals.similarity < settings.declined_similarity or nothing_known):
        return DECLINED, OFF_TOPIC
    unknown = len(signals.unknown_subject) > settings.max_unknown_subject
    if unknown and evidence < settings.subject_override:
        return SUGGESTED, UNKNOWN_SUBJECT
    if evidence < settings.min_evidence:
        return SUGGESTED, WEAK_EVIDENCE
    return ANSWERED, None


class OutcomeGate:
    """Measures the signals on the retrieved blocks and decides the outcome."""

    def __init__(
        self,
        retriever: Retriever,
        settings: AnsweringSettings,
        cross_encoder: PairScorer | None,
        reader: QuestionReader | None,
    ) -> None:
        self.settings = settings
        self.cross_encoder = cross_encoder
        self.reader = reader
        self.vocabularies = ReleaseVocabulary(retriever)

    def assess(self, question: str, retrieval: Retrieval) -> Verdict:
        """The verdict on the blocks `retrieval` found for `question` (no signals when the
        gate is off: every question is answered)."""
        if not self.settings.gate:
            return Verdict(ANSWERED, None, Signals(0.0, None))
        signals = self.signals(question, retrieval)
        outcome, reason = decide(signals, self.settings)
        return Verdict(outcome, reason, signals)

    def signals(self, question: str, retrieval: Retrieval) -> Signals:
        """What the outcome is decided on (the bench measures these)."""
        chunks = retrieval.chunks
        similarity = max((c.similarity or 0.0 for c in chunks), default=0.0)
        reading = self.reader(question) if self.reader is not None else None
        evidence = self.evidence(question, reading, chunks)
        if reading is None:
            return Signals(similarity, evidence)
        vocabulary = self.vocabularies.vocabulary(retrieval.index.collection)
        unknown = unknown_words(reading.subject, vocabulary.frequency)
        return Signals(similarity, evidence, tuple(reading.subject), unknown)

    def evidence(
        self, question: str, reading: Reading | None, chunks: Sequence[ScoredChunk]
    ) -> float | None:
        """The best cross-encoder score; the asking sentences get a second read when weak."""
        if self.cross_encoder is None or not chunks:
            return None
        passages = [passage(c) for c in chunks]
        best = max(self.cross_encoder.score(question, passages))
        asking = reading.asking if reading else ""
        if best < self.settings.min_evidence and asking and asking != question.strip():
            best = max(best, *self.cross_encoder.score(asking, passages))
        return best


def passage(scored: ScoredChunk) -> str:
    """What the cross-encoder reads of a block: where it sits, then its text."""
    chunk = scored.chunk
    where = f"{chunk.file} > {chunk.heading}" if chunk.heading else chunk.file
    return f"{where}\n{chunk.text}"


def suggestions(chunks: Sequence[ScoredChunk], limit: int) -> list[ScoredChunk]:
    """The closest pages, each page (file and heading) once, best first."""
    seen: set[tuple[str, str]] = set()
    picked = []
    for scored in chunks:
        key = (scored.chunk.file, scored.chunk.heading)
        if key not in seen:
            seen.add(key)
            picked.append(scored)
        if len(picked) == limit:
            break
    return picked


def pages_text(pages: Sequence[dict[str, str]]) -> str:
    """The suggested pages as plain text, for clients that show only the answer's text."""
    if not pages:
        return ""
    lines = [f"- {p['file']} › {p['heading']} ({p['release']})" for p in pages]
    return "\n\nThe closest pages in the documentation:\n" + "\n".join(lines)
