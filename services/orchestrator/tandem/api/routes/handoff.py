"""Handoff to a person: `POST /v1/handoff` (chat key) and the operator's view (admin key)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from tandem.api.admin_schemas import HandoffList, HandoffOut
from tandem.api.deps import AdminKey, ChatKey, Services, ServicesDep
from tandem.api.schemas import HandoffAccepted
from tandem.errors import NotFound
from tandem.handoffs.delivery import HandoffDelivery
from tandem.handoffs.intake import HandoffAsk, take_handoff
from tandem.rag.prompt import ChatMessage
from tandem.stores.feedback import FeedbackLog
from tandem.stores.handoffs import STATUSES, HandoffFilter, HandoffRecord, HandoffStore

router = APIRouter(tags=["handoff"])


class HandoffMessage(BaseModel):
    """One turn of the transcript (its size is capped as a whole, by a setting)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class HandoffRequest(BaseModel):
    """The customer asks for a person; the caps on contact, note and transcript (413) are
    settings (TANDEM_HANDOFF__MAX_*), checked in `tandem.handoffs.intake`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=128)  # the answer id the customer saw
    contact: str = Field(min_length=1)  # an email address, or whatever the site asks for
    note: str = ""
    messages: list[HandoffMessage] = Field(default_factory=list)


def _stores(services: Services) -> tuple[FeedbackLog, HandoffStore]:
    if services.feedback is None or services.handoffs is None:
        raise NotFound("this server keeps no answer log, so it takes no handoffs")
    return services.feedback, services.handoffs


def _iso(moment: float | None) -> str | None:
    return None if moment is None else dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def handoff_out(record: HandoffRecord) -> dict[str, Any]:
    """A handoff as the admin API shows it."""
    return {
        "id": record.id,
        "status": record.status,
        "attempts": record.attempts,
        "last_error": record.last_error,
        "created_at": _iso(record.created),
        "delivered_at": _iso(record.delivered),
        "next_attempt_at": _iso(record.next_attempt) if record.status == "pending" else None,
        "answer_id": record.answer_id,
        "outcome": record.outcome,
        "release": record.release,
        "adapter": record.adapter,
        "contact": record.contact,
        "note": record.note,
        "transcript": record.transcript,
        "answered": record.answered,
    }


def _nudge(request: Request) -> None:
    delivery: HandoffDelivery | None = getattr(request.app.state, "handoff_delivery", None)
    if delivery is not None:
        delivery.nudge()


@router.post("/v1/handoff", status_code=202, response_model=HandoffAccepted)
async def post_handoff(
    body: HandoffRequest, request: Request, services: ServicesDep, key: ChatKey
) -> HandoffAccepted:
    """Hand the conversation to a person; delivered to the help desk in the background."""
    answers, store = _stores(services)
    messages: list[ChatMessage] = [{"role": m.role, "content": m.content} for m in body.messages]
    ask = HandoffAsk(body.id, body.contact, body.note, messages)
    record = await anyio.to_thread.run_sync(take_handoff, ask, answers, store, services.settings)
    _nudge(request)
    return HandoffAccepted(handoff=record.id)


@router.get("/v1/admin/handoffs", response_model=HandoffList)
async def list_handoffs(
    services: ServicesDep,
    key: AdminKey,
    status: Literal["pending", "delivered", "failed"] | None = None,
    release: str | None = Query(default=None, max_length=64),
    adapter: str | None = Query(default=None, max_length=128),
    since: dt.datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Handoffs, newest first, with attempts and the last error; a count per status."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    filters = HandoffFilter(status, release, adapter, since.timestamp() if since else None)
    store = _stores(services)[1]
    items = await anyio.to_thread.run_sync(store.items, filters, limit)
    return {
        "items": [handoff_out(r) for r in items],
        "summary": {s: sum(r.status == s for r in items) for s in STATUSES},
    }


@router.post("/v1/admin/handoffs/{handoff_id}/retry", status_code=202, response_model=HandoffOut)
async def retry_handoff(
    handoff_id: str, request: Request, services: ServicesDep, key: AdminKey
) -> dict[str, Any]:
    """Send a failed handoff again (a fresh set of attempts); 409 once it was delivered."""
    store = _stores(services)[1]
    record = await anyio.to_thread.run_sync(store.retry, handoff_id, time.time())
    _nudge(request)
    return handoff_out(record)
