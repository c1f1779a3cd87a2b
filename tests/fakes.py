"""The shared test kit: one fake vLLM played at the HTTP transport, the app's services built
through the real factory around it, settings that keep every write under a test's tmp_path,
in-memory stores, small well-formed adapter folders, and a real loopback HTTP server for the
fakes a test must reach over the network (tests/integration/stream_relay.py, webhook_receiver.py).

The orchestrator's own code runs unpatched: only vLLM's HTTP answers are made up here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
from qdrant_client import QdrantClient
from safetensors.numpy import save_file

from tandem.api.app import ServicesFactory, build_services
from tandem.api.deps import Services
from tandem.llm.client import VllmClient
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.settings import BASE_MODEL_ID, AnsweringSettings, Settings
from tandem.stores.deployment import Stores
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import MemoryStateStore

HIDDEN = 16  # the hidden size of the base model `write_adapter`'s folders fit

# The whole answer as one text, or the stream's deltas in order (the whole answer is their join).
Reply = str | Sequence[str]


def answer_from(model: str) -> Reply:
    """The default reply: names the model that answered, so a test sees which one did."""
    return f"answer from {model}"


@dataclass
class FakeVllm:
    """One vLLM replica at the transport: /health, /v1/models, runtime LoRA load/unload, chat
    completions whole or streamed (with a usage chunk). Records every completion request.

    A chat for a model neither the base nor loaded is a 404, as vLLM answers it.
    """

    url: str = "http://vllm.test"
    reply: Reply | Callable[[str], Reply] = answer_from  # text, or the text per served model
    piece: int = 0  # stream a text reply in deltas of this many characters (0: one delta)
    usage: tuple[int, int] = (11, 3)  # prompt and completion tokens
    delay_s: float = 0.0  # how long loads and completions take (lets two swaps overlap)
    delta_delay_s: float = 0.0  # before each streamed delta (a slow model)
    loaded: set[str] = field(default_factory=set)
    refuse: set[str] = field(default_factory=set)  # adapters whose load fails (HTTP 500)
    down: bool = False  # every request: connection refused
    requests: list[dict[str, Any]] = field(default_factory=list)  # completion bodies received
    models_used: list[str] = field(default_factory=list)  # the model of each one answered
    unloads: list[str] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/health":
            return httpx.Response(200)
        if path == "/v1/models":
            names = [BASE_MODEL_ID, *sorted(self.loaded)]
            return httpx.Response(200, json={"data": [{"id": n} for n in names]})
        if path == "/v1/load_lora_adapter":
            await asyncio.sleep(self.delay_s)
            return self._load(body["lora_name"])
        if path == "/v1/unload_lora_adapter":
            return self._unload(body["lora_name"])
        if path == "/v1/chat/completions":
            self.requests.append(body)
            await self.generating(body)
            return self._completion(body)
        return _error(404, f"no route {path}")

    async def generating(self, body: dict[str, Any]) -> None:
        """Runs before each completion is answered; subclasses hold requests here."""
        await asyncio.sleep(self.delay_s)

    def deltas(self, model: str) -> list[str]:
        """The answer for `model` as the stream's deltas."""
        reply = self.reply(model) if callable(self.reply) else self.reply
        if not isinstance(reply, str):
            return list(reply)
        if not self.piece:
            return [reply]
        return [reply[i : i + self.piece] for i in range(0, len(reply), self.piece)]

    def client(self, timeout_s: float = 5.0) -> VllmClient:
        return VllmClient(self.url, timeout_s, transport=httpx.MockTransport(self.handle))

    def _load(self, name: str) -> httpx.Response:
        if name in self.refuse:
            return _error(500, f"could not load {name}: shape mismatch")
        if name in self.loaded:
            return _error(400, f"{name} has already been loaded")
        self.loaded.add(name)
        return httpx.Response(200, text="added")

    def _unload(self, name: str) -> httpx.Response:
        if name not in self.loaded:
            return _error(404, "cannot be found")
        self.loaded.discard(name)
        self.unloads.append(name)
        return httpx.Response(200, text="removed")

    def _completion(self, body: dict[str, Any]) -> httpx.Response:
        model = body["model"]
        if model != BASE_MODEL_ID and model not in self.loaded:
            return _error(404, f"The model `{model}` does not exist.")
        self.models_used.append(model)
        deltas = self.deltas(model)
        usage = {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]}
        if body.get("stream"):
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(200, content=self._events(deltas, usage), headers=headers)
        message = {"role": "assistant", "content": "".join(deltas)}
        choice = {"message": message, "finish_reason": "stop"}
        return httpx.Response(200, json={"choices": [choice], "usage": usage})

    async def _events(self, deltas: list[str], usage: dict[str, int]) -> AsyncIterator[bytes]:
        for text in deltas:
            await asyncio.sleep(self.delta_delay_s)
            yield _event({"choices": [{"delta": {"content": text}}]})
        yield _event({"choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message}})


def memory_stores(dim: int, **records: Any) -> Stores:
    """The doc store in an in-memory Qdrant, the in-memory state store, and `records` (the
    answer log, the handoffs) where a test keeps its own."""
    return Stores(QdrantDocStore(QdrantClient(":memory:"), dim), MemoryStateStore(), **records)


def unit_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose every file lives under `tmp_path` (never the developer's ./data) and with
    no model on disk there: token budgets use the byte bound, and the outcome's model signals
    (cross-encoder, parser) are off unless `answering` says otherwise."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "models_dir": tmp_path / "models",
        "answering": AnsweringSettings(cross_encoder=False, subject=False),
    }
    return Settings(**{**values, **overrides})


def fake_services(vllm: FakeVllm, stores: Stores | None = None) -> ServicesFactory:
    """The real `build_services` around the hash embedder, in-memory stores (or `stores`) and
    `vllm`: what `create_app(settings, services_factory=...)` takes."""

    def make(settings: Settings) -> Services:
        embedder = HashEmbedder()
        pool = VllmPool([vllm.client(settings.vllm.request_timeout_s)], settings.vllm.max_in_flight)
        return build_services(
            settings, embedder, stores=stores or memory_stores(embedder.dim), pool=pool
        )

    return make


def write_adapter(folder: Path, rank: int = 4, **config: Any) -> Path:
    """A small, well-formed LoRA folder (q_proj/v_proj of two layers)."""
    folder.mkdir(parents=True)
    base = {
        "peft_type": "LORA",
        "base_model_name_or_path": BASE_MODEL_ID,
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["q_proj", "v_proj"],
        "bias": "none",
    }
    (folder / "adapter_config.json").write_text(json.dumps({**base, **config}))
    tensors = {}
    for layer in range(2):
        for module in ("q_proj", "v_proj"):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = np.full((rank, HIDDEN), 0.01, dtype=np.float32)
            tensors[f"{prefix}.lora_B.weight"] = np.full((HIDDEN, rank), 0.02, dtype=np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 (`port` 0: any free one), serving `handler` from a
    daemon thread once started, one thread a request."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output free of access-log lines."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
