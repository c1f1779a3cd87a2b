"""The models the outcome decision reads, built from settings (one place builds each)."""

from __future__ import annotations

from tandem.answering.outcome import PairScorer, SubjectFinder
from tandem.answering.subject import question_subject
from tandem.settings import Settings


def make_reranker(settings: Settings) -> PairScorer | None:
    """The prepared cross-encoder, or None when reranking is off."""
    if not settings.answering.rerank:
        return None
    from tandem.rag.cross_encoder import CrossEncoder
    from tandem.rag.cross_encoder_prep import cross_encoder_path

    return CrossEncoder(cross_encoder_path(settings.models_dir))


def make_subject_finder(settings: Settings) -> SubjectFinder | None:
    """spaCy's parser finding a question's subject words, or None when that signal is off."""
    if not settings.answering.subject:
        return None
    from tandem.rag.parser import load_parser

    parser = load_parser()
    return lambda question: question_subject(parser, question)
