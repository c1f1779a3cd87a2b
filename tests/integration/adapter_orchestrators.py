"""Orchestrator helpers for the adapter tests: a second replica, vLLM's loaded names, readiness."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
from tests.integration.app_server import serve
from tests.integration.conftest import Stack

from tandem.api.deps import Services
from tandem.chat import ChatService
from tandem.llm.adapters import AdapterRegistry
from tandem.llm.pool import VllmPool
from tandem.rag.store import DocStore

SLOT = "swaptest"  # not `support`: other tests may share the vLLM and its served names


class _Borrowed:
    """The first orchestrator's Qdrant client, shared; closing it is left to its owner."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def second_orchestrator(stack: Stack, vllm_urls: list[str] | None = None) -> Iterator[str]:
    """Another orchestrator replica over the same shared state (and other vLLM URLs if given)."""
    settings = stack.settings
    if vllm_urls:
        vllm = settings.vllm.model_copy(update={"urls": vllm_urls})
        settings = settings.model_copy(update={"vllm": vllm})
    first = stack.services
    store = DocStore(_Borrowed(first.store.client), first.store.dim)  # type: ignore[arg-type]
    registry = AdapterRegistry(settings.adapters_dir, store)
    pool = VllmPool.from_settings(settings.vllm)
    chat = ChatService(settings, first.retriever, registry, pool)
    services = Services(settings, store, first.embedder, first.retriever, registry, pool, chat)
    yield from serve(settings, services)


def vllm_models(vllm_url: str) -> list[str]:
    response = httpx.get(f"{vllm_url}/v1/models", timeout=30)
    return [str(m["id"]) for m in response.json()["data"]]


def loaded_models(stack: Stack) -> list[str]:
    return vllm_models(stack.settings.vllm.endpoints()[0])


def unload_slot(vllm_url: str, slot: str) -> None:
    """Leave the shared vLLM as the test found it."""
    with contextlib.suppress(httpx.HTTPError):
        for name in vllm_models(vllm_url):
            if name.startswith(f"{slot}-v"):
                httpx.post(f"{vllm_url}/v1/unload_lora_adapter", json={"lora_name": name})


def wait_adapter_ready(url: str, timeout_s: float = 120) -> dict[str, Any]:
    """Block until /readyz says the active adapter is servable (the index may be absent)."""
    deadline = time.monotonic() + timeout_s
    checks: dict[str, Any] = {}
    while time.monotonic() < deadline:
        checks = httpx.get(f"{url}/readyz", timeout=30).json()["checks"]
        if checks.get("adapter"):
            return checks
        time.sleep(0.25)
    raise AssertionError(f"the adapter never became servable: {checks}")
