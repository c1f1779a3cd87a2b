"""Admin API for release pairs: plan (build + gate), promote, roll back, list; the candidate
chat route the gate asks through. Admin key only."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tandem.adapters.swap import AdapterSwapper
from tandem.api.deps import AdminKey, Services, ServicesDep
from tandem.api.routes.adapters import actor
from tandem.api.routes.chat import chat_response
from tandem.api.schemas import ChatRequest, ChatResponse
from tandem.rag.prompt import ChatMessage
from tandem.releases.candidate import CandidateChats
from tandem.releases.gate import GateFailed, gate_from
from tandem.releases.metrics import PairMetricsObserver
from tandem.releases.plan import Answer, AnswerFor
from tandem.releases.pointer import ServingPair
from tandem.releases.service import Releases

router = APIRouter(prefix="/v1/admin/releases", tags=["admin"])
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


def releases_of(request: Request) -> Releases:
    releases: Releases = request.app.state.releases
    return releases


@router.post("", status_code=202)
async def plan_release(body: PlanRequest, request: Request, key: AdminKey) -> JSONResponse:
    """Build the candidate pair (docs not serving, adapter loaded, not active), then gate it."""
    releases, loop = releases_of(request), asyncio.get_running_loop()
    gate = gate_from(body.gate)
    job = await anyio.to_thread.run_sync(
        lambda: releases.start_plan(
            body.release, body.path, body.adapter, body.qa, gate, loop, body.docs_release
        )
    )
    return JSONResponse({"job": job.id, "release": body.release}, status_code=202)


@router.get("")
async def list_releases(request: Request, key: AdminKey) -> dict[str, Any]:
    """Serving, canary, kept and candidate pairs with their gate reports; the journal."""
    return await anyio.to_thread.run_sync(releases_of(request).overview)


@router.post("/rollback")
async def rollback_release(request: Request, key: AdminKey) -> dict[str, Any]:
    """End the canary, else serve the pair before the serving one again."""
    return await releases_of(request).rollback(actor(request, key))


@router.get("/{release}")
async def release_detail(release: str, request: Request, key: AdminKey) -> dict[str, Any]:
    """One pair's record: status, gate report, what changed, forced promotions."""
    return await anyio.to_thread.run_sync(releases_of(request).pair, release)


@router.post("/{release}/promote", response_model=None)
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
    pair = await anyio.to_thread.run_sync(releases_of(request).serving_pair_of, release)
    conversation = [ChatMessage(role=m.role, content=m.content) for m in body.messages]
    answer: Answer = request.app.state.candidate_answer(pair)
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


async def start_releases(
    app: FastAPI, services: Services, swapper: AdapterSwapper
) -> asyncio.Task[None]:
    """Build `Releases` for the app, finish what a crash left, count turns, start the watch."""
    chats = CandidateChats(services.settings, services.retriever, services.registry, services.pool)
    app.state.candidate_answer = candidate_answers(chats)
    releases = Releases(
        services.settings, services.stores, services.embedder, services.registry, swapper,
        app.state.jobs, app.state.candidate_answer, services.feedback, services.index_embedder,
    )  # fmt: skip
    app.state.releases = releases
    services.chat.observers.append(PairMetricsObserver(releases.pointer, releases.counters))
    await releases.tick()  # a promote a crash interrupted is finished before anything serves
    return asyncio.create_task(releases.watch())
