"""SIGTERM drains: streams in flight finish within `drain_s`; longer ones are cut, then it stops.

The real app under the server `tandem up` runs (`server_config`), with vLLM played at the
transport by a slow stream; the shutdown is uvicorn's own SIGTERM path (`handle_exit`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import threading
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient
from tests.conftest import free_port

from tandem.adapters.registry import AdapterRegistry
from tandem.answering.turn import ChatService
from tandem.api.app import create_app
from tandem.api.deps import Services
from tandem.cli.up import server_config
from tandem.llm.budget import Utf8Bound
from tandem.llm.client import VllmClient
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import MemoryStateStore

DELTAS = 10


def slow_vllm(delay_s: float) -> httpx.MockTransport:
    async def body() -> AsyncIterator[bytes]:
        for n in range(DELTAS):
            await asyncio.sleep(delay_s)
            delta = {"choices": [{"delta": {"content": f"w{n} "}}]}
            yield f"data: {json.dumps(delta)}\n\n".encode()
        usage = {"prompt_tokens": 5, "completion_tokens": DELTAS}
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode()

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200)
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(200, content=body())
        return httpx.Response(200, json={"data": []})

    return httpx.MockTransport(handle)


def services_for(delay_s: float) -> object:
    def make(settings: Settings) -> Services:
        embedder = HashEmbedder()
        store = Stores(QdrantDocStore(QdrantClient(":memory:"), embedder.dim), MemoryStateStore())
        retriever = Retriever(store, embedder, "docs", 10)
        registry = AdapterRegistry(settings.adapters_dir, store.state)
        pool = VllmPool([VllmClient("http://vllm.test", 30, transport=slow_vllm(delay_s))])
        chat = ChatService(settings, retriever, registry, pool, Utf8Bound())
        return Services(settings, store, embedder, retriever, registry, pool, chat)

    return make


def stream_then_sigterm(drain_s: float, delay_s: float) -> tuple[list[str], float]:
    """Events of one stream during which the server got SIGTERM; seconds the stop took."""
    settings = Settings(port=free_port(), drain_s=drain_s)
    app = create_app(settings, services_factory=services_for(delay_s))  # type: ignore[arg-type]
    server = uvicorn.Server(server_config(app, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    body = {"messages": [{"role": "user", "content": "hi"}], "retrieval": False, "stream": True}
    events: list[str] = []
    url = f"http://127.0.0.1:{settings.port}/v1/chat"
    try:
        with httpx.stream("POST", url, json=body, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                    if events.count("delta") == 1:
                        server.handle_exit(signal.SIGTERM, None)
                        stopping = time.monotonic()
    except httpx.HTTPError:
        events.append("cut")
    thread.join(timeout=30)
    assert not thread.is_alive()
    return events, time.monotonic() - stopping


def test_streams_in_flight_finish_before_the_server_stops() -> None:
    events, _ = stream_then_sigterm(drain_s=10, delay_s=0.1)
    assert events[0] == "sources" and events[-1] == "done"


def test_a_stream_longer_than_the_drain_is_cut_and_the_server_stops() -> None:
    events, took = stream_then_sigterm(drain_s=1, delay_s=0.5)
    assert "done" not in events
    assert took < 4.0  # bounded: the drain, not the stream's remaining 4 s


def test_a_server_app_freezes_what_start_up_built_and_a_test_app_does_not() -> None:
    """Full garbage collections then skip start-up's objects (~350 ms with the embedder's)."""
    settings = Settings(port=free_port())
    gc.unfreeze()
    try:
        with TestClient(create_app(settings, services_for(0.0))):  # type: ignore[arg-type]
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(settings, services_for(0.0), freeze=True)):  # type: ignore[arg-type]
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
