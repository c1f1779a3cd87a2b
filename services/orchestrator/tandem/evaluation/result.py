"""What one evaluation run measured (the run produces it, the report renders it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tandem.evaluation.gate import Gate
from tandem.evaluation.scores import AnswerScore, ConfigSummary


@dataclass
class EvalResult:
    """Everything one run measured, and where the report went."""

    url: str
    qa_path: Path
    concurrency: int
    serving_release: str | None
    started_at: str
    duration_s: float
    items_total: int
    skipped: list[str]
    scores: list[AnswerScore]
    summaries: dict[str, ConfigSummary]
    gate: Gate | None = None
    violations: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True unless a gate was given and hybrid violated it."""
        return not self.violations
