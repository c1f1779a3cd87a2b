"""The release gate: a candidate pair answers through the real chat path, thresholds decide.

Two sets of questions: the QA file the release names (every threshold applies, the same
hybrid thresholds `tandem eval --gate` checks) and one question per section the release
added or changed (from its what-changed report). A derived question has no reference answer,
so coverage does not apply to it; it checks what a docs change can break: that retrieval
finds the changed page, and that the answer keeps the house format and cites validly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tandem.errors import BadInput, Conflict, Forbidden
from tandem.evaluation.gate import Gate, check_gate
from tandem.evaluation.harness import CONFIGURATIONS, Outcome
from tandem.evaluation.qa import QAItem, load_qa
from tandem.evaluation.run import select_items
from tandem.evaluation.scores import AnswerScore, score_outcome, summarise

HYBRID = CONFIGURATIONS["hybrid"]
Ask = Callable[[QAItem], Outcome]  # one question through the candidate pair's chat
Progress = Callable[[str, int, int], None]


class GateFailed(Conflict):
    """A candidate whose gate failed cannot be promoted without `force` (409)."""

    type = "gate_failed"

    def __init__(self, release: str, violations: Sequence[str]) -> None:
        super().__init__(
            f"release {release} failed its gate: {'; '.join(violations)}. "
            'Promote it anyway with "force": true (recorded), or plan a new candidate.'
        )
        self.violations = list(violations)


def gate_from(values: dict[str, Any] | None) -> Gate:
    """Thresholds over the defaults; a key given as null is not checked."""
    values = values or {}
    known = {f.name for f in dataclasses.fields(Gate)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise BadInput(f"unknown gate keys {unknown}; allowed: {sorted(known)}")
    gate = Gate().with_overrides(**values)
    return dataclasses.replace(gate, **{k: None for k, v in values.items() if v is None})


def allowed_qa_path(path: str, roots: Sequence[str]) -> Path:
    """A QA file inside TANDEM_RELEASES__QA_ROOTS (symlinks resolved): else 403, or 400."""
    resolved = Path(path).expanduser().resolve()
    allowed = [Path(root).expanduser().resolve() for root in roots]
    if not any(root in resolved.parents for root in allowed):
        raise Forbidden(
            f"{path} is outside the folders a release's QA file may be read from "
            f"(TANDEM_RELEASES__QA_ROOTS: {', '.join(str(r) for r in allowed)})"
        )
    if not resolved.is_file():
        raise BadInput(f"QA file {path} is not a file on the server")
    return resolved


def derived_questions(changes: dict[str, Any], limit: int) -> list[QAItem]:
    """One question per section a release added or changed, at most `limit`."""
    sections: list[tuple[str, str]] = []
    for page in changes.get("pages_added") or []:
        sections += [(page["file"], heading) for heading in page.get("headings") or []]
    for page in changes.get("pages_changed") or []:
        headings = [*(page.get("headings_added") or []), *(page.get("headings_changed") or [])]
        sections += [(page["file"], heading) for heading in headings]
    items: list[QAItem] = []
    for file, heading in sections[:limit]:
        topic = heading.split(" > ")[-1].strip()
        question = f"What does the documentation say about {topic}?"
        items.append(QAItem(question=question, answer_terms=(), file=file, heading=topic))
    return items


def gate_questions(
    qa: Path | None, docs_release: str, changes: dict[str, Any], limit: int
) -> tuple[list[QAItem], list[QAItem]]:
    """The QA file's questions for `docs_release` (or for any release), and the derived ones."""
    asked = select_items(load_qa(qa), docs_release)[0] if qa is not None else []
    derived = derived_questions(changes, limit)
    if not asked and not derived:
        raise BadInput(
            "the gate has no questions: the release changed no page and names no QA file "
            f"with questions for {docs_release!r} (give one with `qa`)"
        )
    return asked, derived


def _ask_all(
    items: Sequence[QAItem], ask: Ask, progress: Progress, done: int, total: int
) -> list[AnswerScore]:
    scores: list[AnswerScore] = []
    for item in items:
        scores.append(score_outcome(ask(item)))
        done += 1
        progress("eval", done, total)
    return scores


def run_gate(
    gate: Gate,
    asked: Sequence[QAItem],
    derived: Sequence[QAItem],
    ask: Ask,
    progress: Progress,
    out: Path,
) -> dict[str, Any]:
    """Ask every question, score it, check the thresholds; the scores go to `out` (JSON)."""
    total = len(asked) + len(derived)
    progress("eval", 0, total)
    started = time.perf_counter()
    qa_scores = _ask_all(asked, ask, progress, 0, total)
    changed_scores = _ask_all(derived, ask, progress, len(asked), total)
    summaries: dict[str, Any] = {}
    violations: list[str] = []
    if qa_scores:
        summary = summarise(HYBRID.name, HYBRID.approach, qa_scores)
        summaries["qa"] = summary.to_dict()
        violations += [f"QA file: {v}" for v in check_gate(gate, {HYBRID.name: summary})]
    if changed_scores:
        summary = summarise(HYBRID.name, HYBRID.approach, changed_scores)
        summaries["changed_pages"] = summary.to_dict()
        no_reference = dataclasses.replace(gate, min_coverage=None)
        found = check_gate(no_reference, {HYBRID.name: summary})
        violations += [f"changed pages: {v}" for v in found]
    out.parent.mkdir(parents=True, exist_ok=True)
    scores = [s.to_dict() for s in (*qa_scores, *changed_scores)]
    out.write_text(json.dumps({"scores": scores}, indent=1), encoding="utf-8")
    return {
        "passed": not violations,
        "violations": violations,
        "thresholds": gate.to_dict(),
        "questions": {"qa": len(qa_scores), "changed_pages": len(changed_scores)},
        "summaries": summaries,
        "seconds": round(time.perf_counter() - started, 1),
        "scores_file": str(out),
    }
