"""Request and response bodies of the admin routes (index, jobs, adapters, feedback and
handoff review) and of the health probes, named by role."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    release: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RollbackRequest(BaseModel):
    """Which kept release to serve again; neither field means the one before the serving one."""

    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(default=None, min_length=1, max_length=200)
    release: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> RollbackRequest:
        if self.collection is not None and self.release is not None:
            raise ValueError("give either 'collection' or 'release', not both")
        return self


class JobCreated(BaseModel):
    job: str


class JobStatus(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^v\d+$")
    percent: int = Field(default=100, ge=1, le=100)


class ReviewRequest(BaseModel):
    """An agent's review: a corrected answer, and/or approval as training data."""

    model_config = ConfigDict(extra="forbid")

    corrected: str | None = Field(default=None, min_length=1)  # cap: `answering.limits`
    approved: bool = True


class Turn(BaseModel):
    """One turn of a stored conversation or transcript."""

    role: str
    content: str


# --- what the admin, feedback, handoff and health routes answer --------------------------
class ReleaseRef(BaseModel):
    collection: str | None
    release: str | None


class ServingIndex(ReleaseRef):
    changes: dict[str, Any] | None  # the what-changed report of the serving release


class KeptRelease(BaseModel):
    """A release kept for rollback, with its build report's figures."""

    collection: str
    release: str
    created: float
    serving: bool
    counts: dict[str, int | None]  # pages, chunks, embedded, reused, removed
    changes: dict[str, int] | None  # pages added / changed / removed / unchanged
    previous: dict[str, str | None] | None  # what served before it
    seconds: dict[str, float] | None  # per build stage


class IndexBuild(BaseModel):
    collection: str
    release: str
    started: float


class IndexOverview(BaseModel):
    alias: str
    serving: ServingIndex
    kept: list[KeptRelease]  # newest first
    building: IndexBuild | None


class PageHeadings(BaseModel):
    file: str
    headings: list[str]


class PageChange(BaseModel):
    file: str
    headings_added: list[str]
    headings_changed: list[str]
    headings_removed: list[str]


class ChangeSummary(BaseModel):
    pages_added: int
    pages_changed: int
    pages_removed: int
    pages_unchanged: int


class ReleaseChanges(BaseModel):
    """A kept release's what-changed report (a release built before reports had none)."""

    release: str
    collection: str
    previous: dict[str, str | None] | None = None
    summary: ChangeSummary | None = None
    pages_added: list[PageHeadings] = Field(default_factory=list)
    pages_changed: list[PageChange] = Field(default_factory=list)
    pages_removed: list[PageHeadings] = Field(default_factory=list)


class RollbackResult(BaseModel):
    serving: ReleaseRef
    previous: dict[str, str | None]  # {"collection": what served before}


class Canary(BaseModel):
    version: str
    percent: int


class AdapterVersionRow(BaseModel):
    version: str
    served_name: str
    label: str
    role: Literal["active", "canary"] | None
    loaded_on: list[str]  # replica URLs
    requests: int  # served by this orchestrator (the /metrics counter)
    errors: int
    card: dict[str, Any]  # the version's card.json


class AdapterSlot(BaseModel):
    slot: str
    active: str
    served_name: str
    canary: Canary | None
    previous: str | None
    swap_running: bool
    history: list[dict[str, Any]]  # the latest pointer changes
    versions: list[AdapterVersionRow]


class AdapterOverview(BaseModel):
    slots: list[AdapterSlot]
    replicas: list[str]


class AdapterSwap(BaseModel):
    """The slot after activate / rollback; the timings and replicas only when it changed."""

    slot: str
    active: str
    canary: Canary | None
    previous: str | None
    changed: bool
    loaded_on: list[str] | None = None
    retiring: list[str] | None = None  # served names unloaded once no request uses them
    seconds: float | None = None
    load_and_probe_seconds: float | None = None


class FeedbackOut(BaseModel):
    """A rated answer as the customer saw it (source blocks cut to a snippet)."""

    id: str
    rating: Literal["up", "down"]
    comment: str
    rated_at: str  # ISO 8601, UTC
    question: str
    conversation: list[Turn]
    answer: str
    sources: list[dict[str, Any]]  # n, file, heading, release, score, snippet
    adapter: str | None
    release: str | None  # the docs release
    pair: str | None = None  # the release pair (docs + adapter) that answered
    corrected: str | None
    approved: bool


class RatingCounts(BaseModel):
    ratings: int
    down: int
    down_share: float


class FeedbackSummary(RatingCounts):
    by_adapter: dict[str, RatingCounts]
    by_release: dict[str, RatingCounts]


class FeedbackList(BaseModel):
    items: list[FeedbackOut]
    summary: FeedbackSummary


class HandoffOut(BaseModel):
    """A handoff as the operator sees it; times are ISO 8601, UTC."""

    id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    created_at: str | None
    delivered_at: str | None
    next_attempt_at: str | None  # pending ones only
    answer_id: str
    outcome: str
    release: str | None
    adapter: str | None
    contact: str
    note: str
    transcript: list[Turn]
    answered: dict[str, Any]  # what Tandem answered: outcome, text, sources, release, adapter


class HandoffList(BaseModel):
    items: list[HandoffOut]
    summary: dict[str, int]  # handoffs per status


class Liveness(BaseModel):
    status: Literal["ok"]


class ReadinessChecks(BaseModel):
    """What /readyz checked; the reasons appear only where a check failed."""

    vllm: bool
    vllm_supervisor: dict[str, Any] | None = None  # under `tandem up`
    adapter: bool
    adapter_error: str | None = None
    adapter_version: str | None = None
    adapter_replicas: list[str] | None = None
    index: bool
    index_state: Literal["empty", "unavailable", "serving"]
    index_error: str | None = None
    release: str | None = None


class Readiness(BaseModel):
    ready: bool
    checks: ReadinessChecks
