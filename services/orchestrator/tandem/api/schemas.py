"""Request and response bodies of the chat-facing HTTP API (chat, retrieve, feedback,
handoff intake, errors), named by role; the admin and health routes' bodies are in
`admin_schemas`, the release admin API's in `release_schemas`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)  # its length cap: `tandem.answering.limits`


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    adapter: str | None = None
    retrieval: bool = True
    top_k: int | None = Field(default=None, ge=1)  # its cap: `tandem.answering.limits`
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
    release: str | None = None  # the release pair (docs + adapter) that answered
    usage: UsageOut
    timings_ms: Timings


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)  # its caps: `tandem.answering.limits`
    top_k: int | None = Field(default=None, ge=1)


class RetrievedChunk(BaseModel):
    file: str
    heading: str
    release: str
    text: str
    score: float


class RetrieveResponse(BaseModel):
    chunks: list[RetrievedChunk]
    index: IndexRef


class FeedbackRequest(BaseModel):
    """Thumbs up/down on one answer; the route checks the comment's size cap (413)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    rating: Literal["up", "down"]
    comment: str = ""


class FeedbackAccepted(BaseModel):
    id: str
    rating: Literal["up", "down"]


class HandoffAccepted(BaseModel):
    handoff: str


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
