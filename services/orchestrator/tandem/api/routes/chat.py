"""The native chat API: `POST /v1/chat` (JSON or SSE) and `POST /v1/retrieve`.

Translation only: the turn itself is `tandem.answering.turn`. Streams are encoded with
FastAPI's own SSE encoder and served as its `EventSourceResponse`; the route is not a
generator endpoint because one path answers JSON or SSE by the body's `stream`, and a turn
refused before it starts (bad input, vLLM down) must keep its status code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, format_sse_event

from tandem.answering.limits import check_text, check_top_k
from tandem.answering.turn import ChatOptions, Delta, Turn, TurnResult
from tandem.api.deps import ChatKey, ServicesDep
from tandem.api.errors import error_payload
from tandem.api.schemas import (
    ChatRequest,
    ChatResponse,
    IndexRef,
    RetrievedChunk,
    RetrieveRequest,
    RetrieveResponse,
    Suggestion,
)
from tandem.api.turn_wire import graded, index_ref, opening, sources_of, usage_of
from tandem.rag.prompt import ChatMessage

router = APIRouter(tags=["chat"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def chat_response(result: TurnResult) -> ChatResponse:
    grounds, grounding = result.grounds, result.grounding
    assert grounds is not None and grounding is not None, "a whole answer is finished"
    return ChatResponse(
        id=result.plan.id,
        answer=result.text,
        outcome=grounding.outcome,  # type: ignore[arg-type]
        grounded=grounding.grounded,
        abstained=grounding.abstained,
        warnings=list(grounding.warnings),
        unsupported=list(grounding.unsupported),
        suggestions=[Suggestion(**page) for page in grounding.suggestions],
        sources=sources_of(grounds, grounding.cited),
        adapter=result.plan.adapter_label,
        index=index_ref(grounds),
        release=result.plan.release,
        usage=usage_of(result),  # type: ignore[arg-type]
        timings_ms=result.timings_ms,  # type: ignore[arg-type]
    )


def sse(event: str, data: dict[str, Any]) -> bytes:
    return format_sse_event(data_str=json.dumps(data), event=event)


async def chat_events(turn: Turn) -> AsyncIterator[bytes]:
    """`sources`, then `delta`s, then `done` (or `error`)."""
    yield sse("sources", opening(turn))
    try:
        async for item in turn.stream():
            if isinstance(item, Delta):
                yield sse("delta", {"text": item.text})
                continue
            done = {"usage": usage_of(item), "timings_ms": item.timings_ms, **graded(item)}
            plan = turn.plan
            pair = {"id": turn.id, "adapter": plan.adapter_label, "release": plan.release}
            yield sse("done", {**pair, **done})
    except anyio.get_cancelled_exc_class():
        raise
    except Exception as error:  # the status line is gone: report in-band
        yield sse("error", error_payload(error))


@router.post("/v1/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, services: ServicesDep, key: ChatKey) -> Any:
    """Answer the conversation's last user turn from the docs, through the adapter."""
    conversation = [ChatMessage(role=m.role, content=m.content) for m in body.messages]
    options = ChatOptions(body.adapter, body.retrieval, body.top_k, body.conversation_id)
    turn = await services.chat.start(conversation, options, whole=not body.stream)
    if body.stream:
        return EventSourceResponse(chat_events(turn), headers=SSE_HEADERS)
    return chat_response(await turn.answer())


@router.post("/v1/retrieve", response_model=RetrieveResponse)
async def retrieve(body: RetrieveRequest, services: ServicesDep, key: ChatKey) -> RetrieveResponse:
    """The top-k documentation chunks for a query, from the serving release."""
    top_k = check_top_k(body.top_k, services.settings)
    query = check_text(body.query, services.settings, "the query")
    result = await anyio.to_thread.run_sync(services.retriever.retrieve, query, top_k)
    return RetrieveResponse(
        chunks=[
            RetrievedChunk(
                file=s.chunk.file,
                heading=s.chunk.heading,
                release=s.chunk.release,
                text=s.chunk.text,
                score=round(s.score, 4),
            )
            for s in result.chunks
        ],
        index=IndexRef(release=result.index.release, collection=result.index.collection),
    )
