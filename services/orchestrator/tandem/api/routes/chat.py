"""The native chat API: `POST /v1/chat` (JSON or SSE) and `POST /v1/retrieve`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from tandem.answering.turn import ChatAnswer, ChatOptions, ChatService, PreparedChat
from tandem.api.deps import ChatKey, ServicesDep
from tandem.api.errors import error_payload
from tandem.api.schemas import (
    ChatRequest,
    ChatResponse,
    IndexRef,
    RetrievedChunk,
    RetrieveRequest,
    RetrieveResponse,
    Source,
    Suggestion,
)
from tandem.errors import BadInput
from tandem.metrics import ADAPTER_REQUESTS, CHAT_STAGE_SECONDS, TOKENS
from tandem.rag.prompt import ChatMessage
from tandem.settings import Settings

router = APIRouter(tags=["chat"])
SNIPPET_CHARS = 240


def conversation_of(body: ChatRequest, settings: Settings) -> list[ChatMessage]:
    """The request's messages, checked: count and length capped, ending with a user turn."""
    max_messages, max_chars = settings.max_messages, settings.limits.max_message_chars
    if len(body.messages) > max_messages:
        raise BadInput(f"at most {max_messages} messages per request")
    if any(len(m.content) > max_chars for m in body.messages):
        raise BadInput(f"a message may have at most {max_chars} characters")
    if body.messages[-1].role != "user":
        raise BadInput("the last message must come from the user")
    return [ChatMessage(role=m.role, content=m.content) for m in body.messages]


def sources_of(prepared: PreparedChat, cited: Collection[int] = ()) -> list[Source]:
    return [
        Source(
            n=n,
            file=s.chunk.file,
            heading=s.chunk.heading,
            release=s.chunk.release,
            score=round(s.score, 4),
            snippet=s.chunk.text[:SNIPPET_CHARS],
            cited=n in cited,
        )
        for n, s in enumerate(prepared.sources, start=1)
    ]


def index_ref(prepared: PreparedChat) -> IndexRef | None:
    if prepared.index is None:
        return None
    return IndexRef(release=prepared.index.release, collection=prepared.index.collection)


def record(prepared: PreparedChat, outcome: str, timings: dict[str, float], usage: Any) -> None:
    """Per-version request counts and stage timings for /metrics."""
    label = prepared.adapter.label if prepared.adapter else "base"
    ADAPTER_REQUESTS.labels(adapter=label, outcome=outcome).inc()
    for stage in ("retrieval", "generation", "total"):
        CHAT_STAGE_SECONDS.labels(stage=stage).observe(timings.get(stage, 0.0) / 1000)
    if usage is not None:
        TOKENS.labels(kind="prompt").inc(usage["prompt_tokens"])
        TOKENS.labels(kind="completion").inc(usage["completion_tokens"])


def chat_response(answer: ChatAnswer) -> ChatResponse:
    prepared, generation = answer.prepared, answer.generation
    usage = {
        "prompt_tokens": generation.usage.prompt_tokens,
        "completion_tokens": generation.usage.completion_tokens,
    }
    record(prepared, "ok", answer.timings_ms, usage)
    grounding = answer.grounding
    return ChatResponse(
        id=prepared.id,
        answer=generation.text,
        outcome=grounding.outcome,  # type: ignore[arg-type]
        grounded=grounding.grounded,
        abstained=grounding.abstained,
        warnings=list(grounding.warnings),
        unsupported=list(grounding.unsupported),
        suggestions=[Suggestion(**page) for page in grounding.suggestions],
        sources=sources_of(prepared, grounding.cited),
        adapter=prepared.adapter.label if prepared.adapter else None,
        index=index_ref(prepared),
        usage=usage,  # type: ignore[arg-type]
        timings_ms=answer.timings_ms,  # type: ignore[arg-type]
    )


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def chat_events(chat: ChatService, prepared: PreparedChat) -> AsyncIterator[str]:
    """`sources`, then `delta`s, then `done` (or `error`)."""
    yield sse(
        "sources",
        {
            "id": prepared.id,
            "sources": [s.model_dump() for s in sources_of(prepared)],
            "adapter": prepared.adapter.label if prepared.adapter else None,
            "index": (ref.model_dump() if (ref := index_ref(prepared)) else None),
            "outcome": prepared.outcome,  # as decided before generation; `done` has the last
            "abstained": prepared.abstained,
        },
    )
    try:
        async for event, data in chat.stream(prepared):
            if event == "done":
                record(prepared, "ok", data["timings_ms"], data["usage"])
                data = {
                    "id": prepared.id,
                    "adapter": prepared.adapter.label if prepared.adapter else None,
                    **data,
                }
            yield sse(event, data)
    except anyio.get_cancelled_exc_class():
        raise
    except Exception as error:  # the status line is gone: report in-band
        record(prepared, "error", {}, None)
        yield sse("error", error_payload(error))


@router.post("/v1/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, services: ServicesDep, key: ChatKey) -> Any:
    """Answer the conversation's last user turn from the docs, through the adapter."""
    conversation = conversation_of(body, services.settings)
    options = ChatOptions(body.adapter, body.retrieval, body.top_k, body.conversation_id)
    if body.stream:
        prepared = await services.chat.prepare(conversation, options)
        return StreamingResponse(
            chat_events(services.chat, prepared),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return chat_response(await services.chat.answer(conversation, options))


@router.post("/v1/retrieve", response_model=RetrieveResponse)
async def retrieve(body: RetrieveRequest, services: ServicesDep, key: ChatKey) -> RetrieveResponse:
    """The top-k documentation chunks for a query, from the serving release."""
    top_k = body.top_k or services.settings.retrieval.top_k
    result = await anyio.to_thread.run_sync(services.retriever.retrieve, body.query, top_k)
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
