"""The vLLM HTTP client (OpenAI-compatible API plus the runtime LoRA endpoints)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from tandem.errors import BadInput, DependencyDown, NotFound
from tandem.rag.prompt import ChatMessage
from tandem.settings import GenerationSettings


@dataclass
class Usage:
    """What a generation cost, and (streamed: on the last item) why it stopped."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass
class Generation:
    text: str
    usage: Usage
    finish_reason: str | None = None


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    try:
        detail = response.json()
        message = detail.get("error", {}).get("message") or detail.get("message") or detail
    except ValueError:
        message = response.text[:300]
    if response.status_code == 404:
        raise NotFound(f"{what}: {message}")
    if response.status_code in {400, 413, 422}:
        raise BadInput(f"{what}: {message}")
    raise DependencyDown(f"{what} failed with HTTP {response.status_code}: {message}")


class VllmClient:
    """One vLLM server. Never imports vLLM: HTTP only."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: httpx.MockTransport
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            headers=headers,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise DependencyDown(f"vLLM at {self.base_url} is unreachable: {error!r}") from error

    async def healthy(self) -> bool:
        try:
            return (await self.http.get("/health", timeout=3.0)).is_success
        except httpx.TransportError:
            return False

    async def served_models(self) -> list[str]:
        response = await self._request("GET", "/v1/models")
        _raise_for(response, "listing vLLM models")
        return [str(m["id"]) for m in response.json().get("data", [])]

    async def load_adapter(self, name: str, path: str) -> None:
        response = await self._request(
            "POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path}
        )
        if response.status_code == 400 and "already been loaded" in response.text:
            return
        _raise_for(response, f"loading adapter {name}")

    async def unload_adapter(self, name: str) -> None:
        response = await self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
        if response.status_code in {400, 404}:  # not loaded: nothing to do
            return
        _raise_for(response, f"unloading adapter {name}")

    def _body(
        self, model: str, messages: Sequence[ChatMessage], gen: GenerationSettings, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "max_tokens": gen.max_tokens,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "repetition_penalty": gen.repetition_penalty,
            "stream": stream,
        }
        if gen.stop:
            body["stop"] = list(gen.stop)
        if gen.seed is not None:
            body["seed"] = gen.seed
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def chat(
        self, model: str, messages: Sequence[ChatMessage], gen: GenerationSettings
    ) -> Generation:
        """One complete (non-streamed) chat completion."""
        response = await self._request(
            "POST", "/v1/chat/completions", json=self._body(model, messages, gen, False)
        )
        _raise_for(response, f"generation with {model}")
        data = response.json()
        usage = data.get("usage") or {}
        choice = data["choices"][0]
        return Generation(
            text=choice["message"].get("content") or "",
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )

    async def chat_stream(
        self, model: str, messages: Sequence[ChatMessage], gen: GenerationSettings
    ) -> AsyncIterator[str | Usage]:
        """Text deltas as they come, then the usage as the last item."""
        body = self._body(model, messages, gen, True)
        try:
            async with self.http.stream("POST", "/v1/chat/completions", json=body) as response:
                if not response.is_success:
                    await response.aread()
                    _raise_for(response, f"generation with {model}")
                finish: str | None = None
                async for line in response.aiter_lines():
                    for item in _parse_sse_line(line):
                        if isinstance(item, Finish):
                            finish = item.reason
                        elif isinstance(item, Usage):
                            yield replace(item, finish_reason=finish)
                        else:
                            yield item
        except httpx.TransportError as error:
            raise DependencyDown(f"vLLM at {self.base_url} failed mid-stream: {error!r}") from error


@dataclass(frozen=True)
class Finish:
    reason: str


def _parse_sse_line(line: str) -> list[str | Usage | Finish]:
    """A delta's text, the finish reason and the usage an SSE line carries (often none)."""
    if not line.startswith("data:"):
        return []
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return []
    data = json.loads(payload)
    if data.get("usage") and not data.get("choices"):
        usage = data["usage"]
        return [Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))]
    choices = data.get("choices") or [{}]
    items: list[str | Usage | Finish] = []
    if delta := (choices[0].get("delta") or {}).get("content"):
        items.append(str(delta))
    if reason := choices[0].get("finish_reason"):
        items.append(Finish(str(reason)))
    return items
