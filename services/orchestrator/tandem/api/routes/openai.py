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
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field

from tandem.answering.outcome import pages_text
from tandem.answering.turn import BASE_ADAPTER, ChatOptions, Delta, Turn, TurnResult
from tandem.api.deps import ChatKey, ServicesDep
from tandem.api.errors import error_payload
from tandem.api.schemas import IndexRef, Source, Suggestion
from tandem.api.turn_wire import graded, opening, sources_of, usage_of
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


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class CompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class CompletionChoice(BaseModel):
    index: int
    finish_reason: str
    message: CompletionMessage


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TandemExtra(BaseModel):
    """The extra field `tandem` of a whole answer: the pair that answered, the timings, and
    the answer's grading (`Grounding.to_dict`; a field added there passes through)."""

    model_config = ConfigDict(extra="allow")

    adapter: str | None
    index: IndexRef | None
    release: str | None  # the release pair (docs + adapter) that answered
    outcome: str  # answered, suggested, declined
    abstained: str | None
    timings_ms: dict[str, float]
    grounded: bool
    warnings: list[str]
    unsupported: list[str]
    suggestions: list[Suggestion]
    cited: list[int]


class ChatCompletion(BaseModel):
    """A whole (non-streamed) answer: OpenAI's fields, plus `sources` and `tandem`."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    sources: list[Source]
    tandem: TandemExtra


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


def conversation_of(body: CompletionRequest) -> list[ChatMessage]:
    """User and assistant turns (client system messages are dropped); limits: the plan."""
    return [
        ChatMessage(role=m.role, content=_text(m.content))
        for m in body.messages
        if m.role in {"user", "assistant"}
    ]


def extras(turn: Turn, result: TurnResult | None = None) -> dict[str, Any]:
    """Tandem's extra fields: sources (with `cited` once known), adapter, index, grading."""
    known = opening(turn)
    cited = result.grounding.cited if result and result.grounding else ()
    finished = {"timings_ms": result.timings_ms, **graded(result)} if result else {}
    return {
        "sources": [s.model_dump() for s in sources_of(turn.grounds, cited)],
        "tandem": {
            "adapter": known["adapter"],
            "index": known["index"],
            "release": known["release"],
            "outcome": known["outcome"],
            "abstained": known["abstained"],
            **finished,
        },
    }


def chunk(turn: Turn, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": turn.id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def data(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body)}\n\n"


async def completion_events(turn: Turn, model: str, include_usage: bool) -> AsyncIterator[str]:
    yield data({**chunk(turn, model, {"role": "assistant", "content": ""}, None), **extras(turn)})
    try:
        async for item in turn.stream():
            if isinstance(item, Delta):
                yield data(chunk(turn, model, {"content": item.text}, None))
                continue
            grading = graded(item)
            if pages := pages_text(grading["suggestions"]):
                yield data(chunk(turn, model, {"content": pages}, None))
            yield data({**chunk(turn, model, {}, item.finish_reason), "tandem": grading})
            if include_usage:
                usage = usage_of(item)
                usage["total_tokens"] = sum(usage.values())
                yield data({**chunk(turn, model, {}, None), "choices": [], "usage": usage})
    except Exception as error:  # the status line is gone: report in-band
        yield data(error_payload(error))
    yield "data: [DONE]\n\n"


def completion(turn: Turn, result: TurnResult, model: str) -> dict[str, Any]:
    usage = usage_of(result)
    grading = graded(result)
    return {
        "id": turn.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": result.finish_reason or "stop",
                "message": {
                    "role": "assistant",
                    "content": result.text + pages_text(grading["suggestions"]),
                },
            }
        ],
        "usage": {**usage, "total_tokens": sum(usage.values())},
        **extras(turn, result),
    }


@router.get("/v1/models", response_model=ModelList)
async def list_models(key: ChatKey) -> dict[str, Any]:
    """The four configurations, as OpenAI model objects."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "tandem"} for name in CONFIGS
        ],
    }


@router.post("/v1/chat/completions", response_model=ChatCompletion)
async def chat_completions(
    body: CompletionRequest, services: ServicesDep, key: ChatKey
) -> dict[str, Any] | EventSourceResponse:
    """OpenAI chat completions over Tandem's retrieval and adapters (a stream is returned
    as the response itself, which FastAPI sends without the model)."""
    if body.model not in CONFIGS:
        raise NotFound(f"model {body.model!r} does not exist; use one of {sorted(CONFIGS)}")
    check_supported(body)
    adapter, retrieval = CONFIGS[body.model]
    generation = generation_for(body, services.settings)
    options = ChatOptions(adapter=adapter, retrieval=retrieval, generation=generation)
    turn = await services.chat.start(conversation_of(body), options, whole=not body.stream)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(completion_events(turn, body.model, include_usage))
    return completion(turn, await turn.answer(), body.model)
