"""Admin API for release pairs: plan (build + gate), promote, roll back, list; the candidate
chat route the gate asks through. Admin key only."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tandem.api.deps import AdminKey, ServicesDep
from tandem.api.release_schemas import (
    PlanRequest,
    PromoteRequest,
    ReleaseChange,
    ReleasePairOut,
    ReleasePlanned,
    ReleasesOverview,
)
from tandem.api.routes.adapters import actor
from tandem.api.routes.chat import chat_response
from tandem.api.schemas import ChatRequest, ChatResponse
from tandem.rag.prompt import ChatMessage
from tandem.releases.candidate import CandidateChats
from tandem.releases.gate import GateFailed, gate_from
from tandem.releases.plan import Answer, AnswerFor
from tandem.releases.pointer import ServingPair
from tandem.releases.service import Releases

router = APIRouter(prefix="/v1/admin/releases", tags=["admin"])


def releases_of(request: Request) -> Releases:
    releases: Releases = request.app.state.releases
    return releases


@router.post("", status_code=202, response_model=ReleasePlanned)
async def plan_release(body: PlanRequest, request: Request, key: AdminKey) -> ReleasePlanned:
    """Build the candidate pair (docs not serving, adapter loaded, not active), then gate it."""
    releases, loop = releases_of(request), asyncio.get_running_loop()
    gate = gate_from(body.gate)
    job = await anyio.to_thread.run_sync(
        lambda: releases.start_plan(
            body.release, body.path, body.adapter, body.qa, gate, loop, body.docs_release
        )
    )
    return ReleasePlanned(job=job.id, release=body.release)


@router.get("", response_model=ReleasesOverview, response_model_exclude_unset=True)
async def list_releases(request: Request, key: AdminKey) -> dict[str, Any]:
    """Serving, canary, kept and candidate pairs with their gate reports; the journal."""
    return await anyio.to_thread.run_sync(releases_of(request).overview)


@router.post("/rollback", response_model=ReleaseChange, response_model_exclude_unset=True)
async def rollback_release(request: Request, key: AdminKey) -> dict[str, Any]:
    """End the canary, else serve the pair before the serving one again."""
    return await releases_of(request).rollback(actor(request, key))


@router.get("/{release}", response_model=ReleasePairOut)
async def release_detail(release: str, request: Request, key: AdminKey) -> dict[str, Any]:
    """One pair's record: status, gate report, what changed, forced promotions."""
    return await anyio.to_thread.run_sync(releases_of(request).pair, release)


@router.post("/{release}/promote", response_model=ReleaseChange, response_model_exclude_unset=True)
async def promote_release(
    release: str, request: Request, key: AdminKey, body: PromoteRequest | None = None
) -> dict[str, Any] | JSONResponse:
    """Serve the pair (to a canary share first, when given); 409 when its gate failed."""
    options = body or PromoteRequest()
    try:
        return await releases_of(request).promote(
            release, actor(request, key), options.force, options.canary
        )
    except GateFailed as failed:
        error = {"type": failed.type, "message": str(failed), "violations": failed.violations}
        return JSONResponse({"error": error}, status_code=failed.status)


@router.post("/{release}/chat", response_model=ChatResponse)
async def candidate_chat(
    release: str, body: ChatRequest, request: Request, services: ServicesDep, key: AdminKey
) -> ChatResponse:
    """The chat path answering with this pair, serving or not (what its gate asks)."""
    releases = releases_of(request)
    pair = await anyio.to_thread.run_sync(releases.serving_pair_of, release)
    conversation = [ChatMessage(role=m.role, content=m.content) for m in body.messages]
    answer: Answer = releases.answer_for(pair)
    return ChatResponse.model_validate(await answer(conversation))


def candidate_answers(chats: CandidateChats) -> AnswerFor:
    """How the gate asks a pair: its chat service, answered as `POST /v1/chat` answers."""

    def answer_for(pair: ServingPair) -> Answer:
        chat = chats.chat(pair)

        async def answer(conversation: list[ChatMessage]) -> dict[str, Any]:
            result = await chat.answer(conversation, chats.options(pair))
            return chat_response(result).model_dump(mode="json")

        return answer

    return answer_for
