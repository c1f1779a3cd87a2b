"""Evaluation: base, RAG, adapter and hybrid measured side by side through the chat API."""

from tandem.evaluation.gate import Gate, check_gate, load_gate
from tandem.evaluation.harness import CONFIGURATIONS, Configuration, Harness, Outcome
from tandem.evaluation.qa import QAItem, load_qa
from tandem.evaluation.result import EvalResult
from tandem.evaluation.run import run_eval
from tandem.evaluation.scores import AnswerScore, ConfigSummary, score_outcome, summarise

__all__ = [
    "CONFIGURATIONS",
    "AnswerScore",
    "ConfigSummary",
    "Configuration",
    "EvalResult",
    "Gate",
    "Harness",
    "Outcome",
    "QAItem",
    "check_gate",
    "load_gate",
    "load_qa",
    "run_eval",
    "score_outcome",
    "summarise",
]
