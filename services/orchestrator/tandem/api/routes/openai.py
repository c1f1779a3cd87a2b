"""OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models` (the SDK works as is).

Model names pick the configuration: `tandem` is the hybrid (retrieval + the active support
adapter); `tandem-rag`, `tandem-adapter` and `tandem-base` are the other three. Client system
messages are dropped: the house system prompt is part of what the adapter was trained on.
Sources ride in the extra field `sources` (and `tandem` for adapter/index/timings).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tandem.answering.grounding import Grounding
from tandem.answering.outcome import pages_text
from tandem.answering.turn import BASE_ADAPTER, ChatOptions, ChatService, PreparedChat
from tandem.api.deps import ChatKey, ServicesDep
from tandem.api.errors import error_payload
from tandem.api.routes.chat import index_ref, record, sources_of
from tandem.errors import BadInput, NotFound
from tandem.rag.prompt import ChatMessage
from tandem.settings import GenerationSettings, Settings

router = APIRouter(tags=["openai"])

CONFIGS: dict[str, tuple[str | None, bool]] = {  # model -> (adapter, retrieval)
    "tandem": (None, True),
    "tandem-rag": (BASE_ADAPTER, True),
    "tandem-adapter": (None, False),
    "tandem-base": (BASE_ADAPTER, False),
}


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # collected, then refused by `check_supported`

    model: str = "tandem"
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=256)  # accepted, unused


def check_supported(body: CompletionRequest) -> None:
    """400 for what Tandem does not do (`n` > 1, `logprobs`, `tools`, ...): never ignored."""
    if body.n not in (None, 1):
        raise BadInput("n must be 1: Tandem returns one answer per request")
    asked = sorted(k for k, v in (body.model_extra or {}).items() if v not in (None, False, [], {}))
    if asked:
        raise BadInput(f"unsupported field(s): {', '.join(asked)}")


def generation_for(body: CompletionRequest, settings: Settings) -> GenerationSettings:
    """The request's sampling fields within Tandem's caps, over the configured defaults."""
    limits = settings.limits
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise BadInput(f"max_tokens must be at most {limits.max_tokens}")
    if body.temperature is not None and body.temperature > limits.max_temperature:
        raise BadInput(f"temperature must be at most {limits.max_temperature}")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    if stop is not None and (len(stop) > limits.max_stop or any(len(s) > 64 for s in stop)):
        raise BadInput(f"stop takes at most {limits.max_stop} strings of up to 64 characters")
    given = {
        "max_tokens": max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "stop": stop,
        "seed": body.seed,
    }
    update = {k: v for k, v in given.items() if v is not None}
    return settings.generation.model_copy(update=update)


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    return content or ""


def conversation_of(body: CompletionRequest, settings: Settings) -> list[ChatMessage]:
    max_messages, max_chars = settings.max_messages, settings.limits.max_message_chars
    turns = [
        ChatMessage(role=m.role, content=_text(m.content))
        for m in body.messages
        if m.role in {"user", "assistant"}
    ]
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise BadInput("the last message must be a non-empty user message")
    if len(turns) > max_messages:
        raise BadInput(f"at most {max_messages} messages per request")
    if any(len(t["content"]) > max_chars for t in turns):
        raise BadInput(f"a message may have at most {max_chars} characters")
    return turns


def extras(
    prepared: PreparedChat,
    timings: dict[str, float] | None = None,
    grounding: Grounding | None = None,
) -> dict[str, Any]:
    """Tandem's extra fields: sources (with `cited` once known), adapter, index, grounding."""
    ref = index_ref(prepared)
    cited = grounding.cited if grounding else ()
    return {
        "sources": [s.model_dump() for s in sources_of(prepared, cited)],
        "tandem": {
            "adapter": prepared.adapter.label if prepared.adapter else None,
            "index": ref.model_dump() if ref else None,
            "outcome": prepared.outcome,
            "abstained": prepared.abstained,
            **({"timings_ms": timings} if timings else {}),
            **(grounding.to_dict() if grounding else {}),
        },
    }


def _chunk(prepared: PreparedChat, model: str, delta: dict[str, Any], finish: str | None) -> str:
    body = {
        "id": prepared.id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


async def completion_events(
    chat: ChatService, prepared: PreparedChat, model: str, include_usage: bool
) -> AsyncIterator[str]:
    first = json.loads(_chunk(prepared, model, {"role": "assistant", "content": ""}, None)[6:])
    yield f"data: {json.dumps({**first, **extras(prepared)})}\n\n"
    try:
        async for event, data in chat.stream(prepared):
            if event == "delta":
                yield _chunk(prepared, model, {"content": data["text"]}, None)
                continue
            record(prepared, "ok", data["timings_ms"], data["usage"])
            if pages := pages_text(data["suggestions"]):
                yield _chunk(prepared, model, {"content": pages}, None)
            last = json.loads(_chunk(prepared, model, {}, "stop")[6:])
            fields = ("outcome", "grounded", "abstained", "warnings", "unsupported", "suggestions")
            grounding = {k: data[k] for k in (*fields, "cited")}
            yield f"data: {json.dumps({**last, 'tandem': grounding})}\n\n"
            if include_usage:
                usage = {**data["usage"], "total_tokens": sum(data["usage"].values())}
                final = json.loads(_chunk(prepared, model, {}, None)[6:])
                yield f"data: {json.dumps({**final, 'choices': [], 'usage': usage})}\n\n"
    except Exception as error:
        record(prepared, "error", {}, None)
        yield f"data: {json.dumps(error_payload(error))}\n\n"
    yield "data: [DONE]\n\n"


@router.get("/v1/models")
async def list_models(key: ChatKey) -> dict[str, Any]:
    """The four configurations, as OpenAI model objects."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "tandem"} for name in CONFIGS
        ],
    }


@router.post("/v1/chat/completions")
async def chat_completions(body: CompletionRequest, services: ServicesDep, key: ChatKey) -> Any:
    """OpenAI chat completions over Tandem's retrieval and adapters."""
    if body.model not in CONFIGS:
        raise NotFound(f"model {body.model!r} does not exist; use one of {sorted(CONFIGS)}")
    check_supported(body)
    adapter, retrieval = CONFIGS[body.model]
    conversation = conversation_of(body, services.settings)
    generation = generation_for(body, services.settings)
    options = ChatOptions(adapter=adapter, retrieval=retrieval, generation=generation)
    if body.stream:
        prepared = await services.chat.prepare(conversation, options)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            completion_events(services.chat, prepared, body.model, include_usage),
            media_type="text/event-stream",
        )
    answer = await services.chat.answer(conversation, options)
    usage = answer.generation.usage
    record(
        answer.prepared,
        "ok",
        answer.timings_ms,
        {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
    )
    return {
        "id": answer.prepared.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "finish_reason": answer.generation.finish_reason or "stop",
                "message": {
                    "role": "assistant",
                    "content": answer.generation.text + pages_text(answer.grounding.suggestions),
                },
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        },
        **extras(answer.prepared, answer.timings_ms, answer.grounding),
    }
