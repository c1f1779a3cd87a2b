"""Request and response bodies of the HTTP API, named by role."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=16_000)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    adapter: str | None = None
    retrieval: bool = True
    top_k: int | None = Field(default=None, ge=1, le=50)
    conversation_id: str | None = Field(default=None, max_length=128)


class Source(BaseModel):
    n: int
    file: str
    heading: str
    release: str
    score: float
    snippet: str
    cited: bool = False  # the answer cites this block (streaming: see `cited` in `done`)


class IndexRef(BaseModel):
    release: str
    collection: str


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Timings(BaseModel):
    """Milliseconds: stage durations, and `prepared` (the prompt is ready, since the request
    started); streams add `model_first_token` (vLLM's first item) and `first_token` (sent)."""

    retrieval: float
    generation: float
    total: float
    prepared: float | None = None


class Suggestion(BaseModel):
    """One of the closest pages offered when the answer is not generated."""

    file: str
    heading: str
    release: str


class ChatResponse(BaseModel):
    id: str
    answer: str
    outcome: Literal["answered", "suggested", "declined"]
    grounded: bool  # answered, citing at least one documentation block it was given
    # why it was not answered: "weak_evidence", "unknown_subject", "off_topic" (decided
    # before generation), "model_fallback", "unsupported_literals" (after it)
    abstained: str | None = None
    # "uncited_answer", "dropped_citations", "unsupported_literal"
    warnings: list[str] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list)  # literals no given block holds
    suggestions: list[Suggestion] = Field(default_factory=list)  # when suggested
    sources: list[Source]
    adapter: str | None
    index: IndexRef | None
    usage: UsageOut
    timings_ms: Timings


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4_000)
    top_k: int | None = Field(default=None, ge=1, le=50)


class RetrievedChunk(BaseModel):
    file: str
    heading: str
    release: str
    text: str
    score: float


class RetrieveResponse(BaseModel):
    chunks: list[RetrievedChunk]
    index: IndexRef


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


class FeedbackRequest(BaseModel):
    """Thumbs up/down on one answer; the route checks the comment's size cap (413)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    rating: Literal["up", "down"]
    comment: str = ""


class ReviewRequest(BaseModel):
    """An agent's review: a corrected answer, and/or approval as training data."""

    model_config = ConfigDict(extra="forbid")

    corrected: str | None = Field(default=None, min_length=1, max_length=16_000)
    approved: bool = True


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
