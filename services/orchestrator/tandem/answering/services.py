"""The models the outcome decision reads, built from settings (one place builds each)."""

from __future__ import annotations

from tandem.answering.outcome import QuestionReader
from tandem.answering.subject import read_question
from tandem.rag.cross_encoder import PairScorer
from tandem.settings import Settings


def make_cross_encoder(settings: Settings) -> PairScorer | None:
    """The prepared cross-encoder, or None when that signal is off."""
    if not settings.answering.cross_encoder:
        return None
    from tandem.rag.cross_encoder import CrossEncoder
    from tandem.rag.cross_encoder_prep import cross_encoder_path

    folder = settings.answering.cross_encoder_dir or cross_encoder_path(settings.models_dir)
    return CrossEncoder(folder, max_length=settings.answering.cross_encoder_tokens)


def make_question_reader(settings: Settings) -> QuestionReader | None:
    """spaCy's parser reading what a question asks, or None when that signal is off."""
    if not settings.answering.subject:
        return None
    from tandem.rag.parser import load_parser

    parser = load_parser()
    return lambda question: read_question(parser, question)
