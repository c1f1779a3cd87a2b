"""Figures per release pair: answers, declines, errors, thumbs down — and the canary's verdict.

Each replica counts the turns it answered per pair (`PairCounters`, fed by the turn's
observer) and writes its counts to the shared state every watch round, one record per
replica, so no two replicas write the same record. Thumbs down come from the answer log: a
rating refers to an answer, and the answer names the collection and adapter it came from,
which is its pair. Counts belong to a window — the canary's comparison, else the serving
pair's time — so each canary is compared on what happened since it started.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from tandem.answering.result import TurnResult
from tandem.releases.pointer import ReleasePointer
from tandem.releases.transitions import window
from tandem.settings import ReleaseSettings
from tandem.stores.feedback import FeedbackFilter, FeedbackLog
from tandem.stores.state import PairPointer, PairStats, StateStore

FIELDS = ("answers", "declined", "suggested", "errors")


def pair_of(pointer: PairPointer, collection: str | None, adapter: str | None) -> str | None:
    """The serving or canary pair an answer came from (by its collection and adapter)."""
    entries = [e for e in (pointer.canary, pointer.serving) if e]
    found = {
        e["release"]
        for e in entries
        if e.get("adapter") == adapter and collection in (None, e["collection"])
    }
    return found.pop() if len(found) == 1 else None


class PairCounters:
    """This replica's counts per (window, pair); `flush` shares them."""

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._counts: dict[tuple[str, str], Counter[str]] = {}
        self._lock = threading.Lock()

    def count(self, window: str, release: str, outcome: str | None) -> None:
        """One turn: `outcome` answered / suggested / declined, None when it failed."""
        with self._lock:
            counts = self._counts.setdefault((window, release), Counter())
            counts["answers" if outcome is not None else "errors"] += 1
            if outcome in ("declined", "suggested"):
                counts[outcome] += 1

    def flush(self, state: StateStore) -> None:
        """Write this replica's counts (whole, not increments: a rewrite changes nothing)."""
        with self._lock:
            snapshot = {key: Counter(counts) for key, counts in self._counts.items()}
        now = time.time()
        for (win, release), counts in snapshot.items():
            values = {name: counts[name] for name in FIELDS}
            state.save_pair_stats(PairStats(win, release, self.replica, updated=now, **values))


class PairMetricsObserver:
    """The turn observer that counts each finished turn against its pair."""

    def __init__(self, pointer: ReleasePointer, counters: PairCounters) -> None:
        self.pointer = pointer
        self.counters = counters

    async def finished(self, result: TurnResult) -> None:
        if result.cancelled:
            return
        current = self.pointer.pointer()
        win = window(current)
        index = result.grounds.index if result.grounds is not None else None
        release = pair_of(current, index.collection if index else None, result.plan.adapter_label)
        if win is None or release is None:
            return
        outcome = result.grounding.outcome if result.ok and result.grounding else None
        self.counters.count(win, release, outcome)


@dataclass
class PairFigures:
    release: str
    answers: int = 0
    declined: int = 0
    suggested: int = 0
    errors: int = 0
    down: int = 0

    @property
    def requests(self) -> int:
        return self.answers + self.errors

    def share(self, count: int, of: int) -> float:
        return count / of if of else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "down_share": round(self.share(self.down, self.answers), 4),
            "declined_share": round(self.share(self.declined, self.answers), 4),
            "error_share": round(self.share(self.errors, self.requests), 4),
        }


def figures(
    state: StateStore, feedback: FeedbackLog | None, pointer: PairPointer
) -> dict[str, PairFigures]:
    """The serving and canary pairs' figures in the current window."""
    win = window(pointer)
    entries = [e for e in (pointer.serving, pointer.canary) if e]
    found = {e["release"]: PairFigures(e["release"]) for e in entries}
    if win is None:
        return found
    for stats in state.pair_stats(win):
        if (pair := found.get(stats.release)) is not None:
            for name in FIELDS:
                setattr(pair, name, getattr(pair, name) + getattr(stats, name))
    since = float((pointer.canary or pointer.serving or {}).get("since", 0.0))
    items = feedback.items(FeedbackFilter(rating="down", since=since)) if feedback else []
    for item in items:
        answer = item.answer
        release = pair_of(pointer, answer.collection, answer.adapter)
        if release in found and answer.created >= since:
            found[release].down += 1
    return found


def canary_verdict(
    serving: PairFigures, canary: PairFigures, settings: ReleaseSettings
) -> str | None:
    """Why the canary must be rolled back, or None (too few answers yet, or it does well)."""
    if canary.requests < settings.min_answers:
        return None
    down = canary.share(canary.down, canary.answers), serving.share(serving.down, serving.answers)
    if down[0] - down[1] > settings.max_down_margin:
        return (
            f"the canary's thumbs-down share {down[0]:.3f} exceeds the serving pair's "
            f"{down[1]:.3f} by more than {settings.max_down_margin} over {canary.requests} turns"
        )
    errors = (
        canary.share(canary.errors, canary.requests),
        serving.share(serving.errors, serving.requests),
    )
    if errors[0] - errors[1] > settings.max_error_margin:
        return (
            f"the canary's error share {errors[0]:.3f} exceeds the serving pair's "
            f"{errors[1]:.3f} by more than {settings.max_error_margin} over {canary.requests} turns"
        )
    return None
