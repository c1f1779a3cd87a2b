"""Request and response bodies of the release admin API (`/v1/admin/releases`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RELEASE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: str = Field(pattern=RELEASE)
    path: str = Field(min_length=1, max_length=1000)
    adapter: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,31}@v\d+$")
    qa: str | None = Field(default=None, max_length=1000)
    gate: dict[str, float | int | None] | None = None
    docs_release: str | None = Field(default=None, pattern=RELEASE)  # default: `release`


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = False
    canary: float | None = Field(default=None, gt=0, lt=1)


class ReleasePlanned(BaseModel):
    job: str
    release: str


class PairEntry(BaseModel):
    """A pair as the pair pointer holds it; `since` where it serves or runs as a canary,
    `share` for the canary."""

    release: str
    collection: str
    docs_release: str
    adapter: str | None  # "support@v4"; None: the base model
    since: float | None = None
    share: float | None = None


class ReleasePairOut(BaseModel):
    """A release pair's record (`ReleasePair`)."""

    release: str
    collection: str  # empty until its docs are built
    docs_release: str
    adapter: str | None
    status: str  # building, evaluating, gated, error, replaced
    created: float
    job: str | None
    qa: str | None
    gate: dict[str, Any]  # thresholds, passed, violations, figures
    forced: list[dict[str, Any]]  # promotions past a failed gate: by, at, violations
    changes: dict[str, Any]  # what changed against the serving docs
    error: str | None
    owner: dict[str, Any]  # host and pid of its plan job


class PairFiguresOut(BaseModel):
    """A pair's counts in the current window (the canary's comparison)."""

    release: str
    answers: int
    declined: int
    suggested: int
    errors: int
    down: int
    down_share: float
    declined_share: float
    error_share: float


class PairView(PairEntry):
    """A placed pair: its pointer entry over its record (none for what served before any
    pair did), its role and, serving or canary, its figures."""

    status: str | None = None
    created: float | None = None
    job: str | None = None
    qa: str | None = None
    gate: dict[str, Any] | None = None
    forced: list[dict[str, Any]] | None = None
    changes: dict[str, Any] | None = None
    error: str | None = None
    owner: dict[str, Any] | None = None
    role: str  # serving, canary, kept
    figures: PairFiguresOut | None


class CandidatePair(ReleasePairOut):
    role: str  # candidate


class ReleasesOverview(BaseModel):
    serving: PairView | None
    canary: PairView | None
    kept: list[PairView]  # newest first
    candidates: list[CandidatePair]  # newest first
    pending: dict[str, Any] | None  # the promote or rollback under way
    journal: list[dict[str, Any]]  # the latest changes, newest first
    drift: list[str]  # derived pointers that disagree with the serving pair


class ReleaseChange(BaseModel):
    """The pointer after a promote or rollback; `converging` when the derived pointers (docs
    alias, active adapter) still wait for the watch."""

    changed: bool
    converging: str | None = None
    serving: PairEntry | None
    canary: PairEntry | None
    journal: list[dict[str, Any]]  # this change
