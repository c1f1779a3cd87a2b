"""Feedback on answers: `POST /v1/feedback` (chat key) and its review (admin key)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Query

from tandem.answering.limits import check_text
from tandem.api.admin_schemas import FeedbackList, FeedbackOut, ReviewRequest
from tandem.api.deps import AdminKey, ChatKey, Services, ServicesDep
from tandem.api.schemas import FeedbackAccepted, FeedbackRequest
from tandem.errors import NotFound
from tandem.stores.feedback import (
    FeedbackFilter,
    FeedbackItem,
    FeedbackLog,
    check_comment,
    summarise,
)

router = APIRouter(tags=["feedback"])
SNIPPET_CHARS = 240


def feedback_log(services: Services) -> FeedbackLog:
    if services.feedback is None:
        raise NotFound("this server keeps no answer log, so it takes no feedback")
    return services.feedback


def item_out(item: FeedbackItem) -> dict[str, Any]:
    """A feedback item as the admin API shows it (source blocks cut to a snippet)."""
    answer = item.answer
    return {
        "id": answer.id,
        "rating": item.rating,
        "comment": item.comment,
        "rated_at": dt.datetime.fromtimestamp(item.rated, dt.UTC).isoformat(),
        "question": answer.question,
        "conversation": answer.conversation,
        "answer": answer.answer,
        "sources": [
            {**{k: v for k, v in s.items() if k != "text"}, "snippet": s["text"][:SNIPPET_CHARS]}
            for s in answer.sources
        ],
        "adapter": answer.adapter,
        "release": answer.release,
        "pair": answer.pair,
        "corrected": item.corrected,
        "approved": item.approved,
    }


@router.post("/v1/feedback", status_code=202, response_model=FeedbackAccepted)
async def post_feedback(
    body: FeedbackRequest, services: ServicesDep, key: ChatKey
) -> FeedbackAccepted:
    """Thumbs up/down (and a comment) on an answer; a second rating replaces the first."""
    comment = check_comment(body.comment, services.settings.feedback.max_comment_chars)
    log = feedback_log(services)
    await anyio.to_thread.run_sync(log.rate, body.id, body.rating, comment)
    return FeedbackAccepted(id=body.id, rating=body.rating)


@router.get("/v1/admin/feedback", response_model=FeedbackList)
async def list_feedback(
    services: ServicesDep,
    key: AdminKey,
    rating: Literal["up", "down"] | None = None,
    adapter: str | None = Query(default=None, max_length=128),
    release: str | None = Query(default=None, max_length=64),
    since: dt.datetime | None = None,
    reviewed: bool | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Rated answers, newest first, and the share of thumbs down per adapter and release."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    filters = FeedbackFilter(
        rating, adapter, release, since.timestamp() if since else None, reviewed
    )
    items = await anyio.to_thread.run_sync(feedback_log(services).items, filters)
    return {"items": [item_out(i) for i in items[:limit]], "summary": summarise(items)}


@router.post("/v1/admin/feedback/{answer_id}/review", response_model=FeedbackOut)
async def review_feedback(
    answer_id: str, body: ReviewRequest, services: ServicesDep, key: AdminKey
) -> dict[str, Any]:
    """Attach a corrected answer and/or approve the item for `tandem dataset from-feedback`."""
    if body.corrected is not None:
        check_text(body.corrected, services.settings, "a corrected answer")
    log = feedback_log(services)
    item = await anyio.to_thread.run_sync(log.review, answer_id, body.corrected, body.approved)
    return item_out(item)
