"""N concurrent streaming chats against Tandem's /v1/chat or straight to vLLM, as clients see them.

Bounded in count and in time, and loopback only: this is a measuring tool, not a flood tool.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from bench._kit import percentile

from tandem.settings import LOOPBACK

QUESTIONS = [
    "How do I reset my password?",
    "How many API requests per minute can I make?",
    "How do I export my timesheets?",
    "How do I turn on two-factor authentication?",
]


@dataclass
class StreamResult:
    """One streamed answer: how it ended ("done", "error", "http 4xx/5xx", "cut") and timings."""

    ended_with: str = "cut"
    status: int = 0
    ttft_s: float | None = None
    completion_tokens: int = 0
    seconds: float = 0.0
    detail: str = ""
    prompt_tokens: int = 0
    sources_s: float | None = None  # Tandem: when the `sources` event came
    sources: dict[str, Any] = field(default_factory=dict)  # Tandem: the `sources` event
    timings_ms: dict[str, float] = field(default_factory=dict)  # Tandem: from `done`

    @property
    def server_error(self) -> bool:
        """A failure that is not the client's fault (anything but done or a 4xx)."""
        return self.ended_with != "done" and not 400 <= self.status < 500


@dataclass
class LoadReport:
    concurrency: int
    wall_s: float
    results: list[StreamResult] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        ttfts = [r.ttft_s for r in self.results if r.ttft_s is not None]
        tokens = sum(r.completion_tokens for r in self.results)
        n = len(self.results)
        return {
            "n": self.concurrency,
            "requests": n,
            "error_rate": round(sum(r.server_error for r in self.results) / max(n, 1), 3),
            "ttft_p50_s": round(percentile(ttfts, 50), 2) if ttfts else None,
            "ttft_p95_s": round(percentile(ttfts, 95), 2) if ttfts else None,
            "tokens_per_s": round(tokens / self.wall_s, 1) if self.wall_s else 0.0,
            "all_terminated": all(r.ended_with in {"done", "error"} for r in self.results),
        }


def require_loopback(url: str) -> None:
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit(f"load runs against loopback only, not {url}")


async def tandem_stream(
    client: httpx.AsyncClient, question: str, history: Sequence[dict[str, str]] = ()
) -> StreamResult:
    """One streamed /v1/chat: `sources`, `delta`s, then `done` or a typed `error`."""
    messages = [*history, {"role": "user", "content": question}]
    body = {"messages": messages, "stream": True}
    return await _stream(client, "/v1/chat", body, _tandem_event)


async def vllm_stream(
    client: httpx.AsyncClient, model: str, messages: list[dict[str, str]], max_tokens: int
) -> StreamResult:
    """The same kind of request straight to vLLM's OpenAI API."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.2,
        "top_p": 0.9,
        "repetition_penalty": 1.1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return await _stream(client, "/v1/chat/completions", body, _openai_event)


Reader = Callable[[str, str, StreamResult, float], None]


async def _stream(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], read: Reader
) -> StreamResult:
    result, started = StreamResult(), time.monotonic()
    try:
        async with client.stream("POST", path, json=body) as response:
            result.status = response.status_code
            if response.status_code != 200:
                result.ended_with = f"http {response.status_code}"
                result.detail = (await response.aread())[:200].decode(errors="replace")
            else:
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        read(event, line[5:].strip(), result, started)
    except httpx.HTTPError as error:
        result.ended_with, result.detail = "cut", repr(error)
    result.seconds = time.monotonic() - started
    return result


def _tandem_event(event: str, data: str, result: StreamResult, started: float) -> None:
    payload = json.loads(data)
    if event == "sources":
        result.sources_s, result.sources = time.monotonic() - started, payload
    elif event == "delta" and result.ttft_s is None:
        result.ttft_s = time.monotonic() - started
    elif event == "done":
        result.ended_with = "done"
        _usage(result, payload["usage"])
        result.timings_ms = payload.get("timings_ms", {})
    elif event == "error":
        result.ended_with, result.detail = "error", data[:200]


def _openai_event(event: str, data: str, result: StreamResult, started: float) -> None:
    if data == "[DONE]":
        result.ended_with = "done" if result.ended_with == "cut" else result.ended_with
        return
    payload = json.loads(data)
    if "error" in payload:
        result.ended_with, result.detail = "error", data[:200]
    elif payload.get("usage") and not payload.get("choices"):
        _usage(result, payload["usage"])
    elif result.ttft_s is None and payload["choices"][0]["delta"].get("content"):
        result.ttft_s = time.monotonic() - started


def _usage(result: StreamResult, usage: dict[str, Any]) -> None:
    result.prompt_tokens = int(usage["prompt_tokens"])
    result.completion_tokens = int(usage["completion_tokens"])


async def run_load(
    one: Callable[[int], Awaitable[StreamResult]],
    concurrency: int,
    duration_s: float,
    max_requests: int,
) -> LoadReport:
    """`concurrency` workers, each streaming back to back until time or count runs out."""
    report = LoadReport(concurrency, 0.0)
    started = time.monotonic()
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while time.monotonic() - started < duration_s and issued < max_requests:
            issued += 1
            report.results.append(await one(issued))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.wall_s = time.monotonic() - started
    return report
