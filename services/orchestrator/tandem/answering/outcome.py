"""The outcome of a chat turn, decided before generation: answered, suggested or declined.

- `answered`: the blocks hold the answer strongly enough to generate from them, cited.
- `suggested`: the question is about the product but the evidence is not strong enough to
  let the model write claims; the customer gets the house sentence and the closest pages.
- `declined`: off-topic, nothing relevant retrieved at all.

Signals (bench/bench_outcomes.py measures them on customer-voice and short questions and
calibrates the thresholds on the calibration split only):
- `rerank`: the cross-encoder's best score over the candidate blocks (it also reorders them);
- `similarity`: the best dense cosine of a retrieved block;
- `unknown_subject`: the words of what the question asks about (`answering/subject.py`) that
  the serving release never uses — a feature, product or platform the docs do not cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from tandem.documents import ScoredChunk
from tandem.grounding import ReleaseVocabulary
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


class PairScorer(Protocol):
    """A cross-encoder: one relevance score per (query, passage) pair, higher is better."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class SubjectFinder(Protocol):
    """The words a question asks about (see `answering/subject.py`)."""

    def __call__(self, question: str) -> list[str]: ...


@dataclass(frozen=True)
class Signals:
    similarity: float
    rerank: float | None  # None without a cross-encoder
    subject: tuple[str, ...] = ()
    unknown_subject: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str | None  # None when answered
    signals: Signals
    chunks: list[ScoredChunk]  # the blocks in the order the answer numbers them


def decide(signals: Signals, settings: AnsweringSettings) -> tuple[Outcome, str | None]:
    """The rule on the signals (the bench calibrates its thresholds on precomputed signals)."""
    rerank = signals.rerank if signals.rerank is not None else settings.min_rerank
    if signals.similarity < settings.declined_similarity and rerank < settings.declined_rerank:
        return DECLINED, OFF_TOPIC
    if len(signals.unknown_subject) > settings.max_unknown_subject:
        return SUGGESTED, UNKNOWN_SUBJECT
    if rerank < settings.min_rerank:
        return SUGGESTED, WEAK_EVIDENCE
    return ANSWERED, None


class OutcomeGate:
    """Reranks the retrieved blocks, measures the signals and decides the outcome."""

    def __init__(
        self,
        retriever: Retriever,
        settings: AnsweringSettings,
        reranker: PairScorer | None,
        subject: SubjectFinder | None,
    ) -> None:
        self.settings = settings
        self.reranker = reranker
        self.subject = subject
        self.vocabularies = ReleaseVocabulary(retriever)

    def candidates(self, top_k: int) -> int:
        """How many blocks to retrieve for `top_k` answered ones (more when reranking)."""
        return max(top_k, self.settings.rerank_candidates) if self.reranker else top_k

    def assess(self, question: str, query: str, retrieval: Retrieval, top_k: int) -> Verdict:
        """The verdict on `retrieval` (retrieved with `candidates(top_k)`) for `question`."""
        chunks = retrieval.chunks
        similarity = max((c.similarity or 0.0 for c in chunks), default=0.0)
        rerank: float | None = None
        if self.reranker is not None and chunks:
            scores = self.reranker.score(query, [passage(c) for c in chunks])
            ranked = sorted(zip(scores, chunks, strict=True), key=lambda p: -p[0])
            chunks = [replace(c, rerank=score) for score, c in ranked]
            rerank = ranked[0][0]
        chunks = chunks[:top_k]
        subject: tuple[str, ...] = ()
        unknown: tuple[str, ...] = ()
        if self.subject is not None:
            from tandem.answering.subject import unknown as unknown_words

            subject = tuple(self.subject(question))
            vocabulary = self.vocabularies.vocabulary(retrieval.index.collection)
            unknown = unknown_words(subject, vocabulary.frequency)
        signals = Signals(similarity, rerank, subject, unknown)
        if not self.settings.gate:
            return Verdict(ANSWERED, None, signals, chunks)
        outcome, reason = decide(signals, self.settings)
        return Verdict(outcome, reason, signals, chunks)


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
