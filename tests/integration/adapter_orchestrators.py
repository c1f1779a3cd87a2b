"""Orchestrator helpers for the adapter tests: a second replica, vLLM's loaded names, readiness."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
from tests.integration.app_server import serve
from tests.integration.conftest import Stack

from tandem.adapters.registry import AdapterRegistry
from tandem.answering.turn import ChatService
from tandem.api.deps import Services
from tandem.llm.pool import VllmPool
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.sqlite import StateDatabase
from tandem.stores.sqlite_state import SqliteStateStore

SLOT = "swaptest"  # not `support`: other tests may share the vLLM and its served names


class _Borrowed(Stores):
    """The first orchestrator's doc store (one process opens an edge store once), with this
    replica's own connection to the shared state; closing the doc store is left to its owner."""

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
    state = SqliteStateStore(StateDatabase(settings.state_path))
    stores = _Borrowed(first.stores.docs, state)
    registry = AdapterRegistry(settings.adapters_dir, state)
    pool = VllmPool.from_settings(settings.vllm)
    chat = ChatService(settings, first.retriever, registry, pool)
    services = Services(settings, stores, first.embedder, first.retriever, registry, pool, chat)
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


def serve_with_slot(
    settings: Settings, services: Services, vllm_url: str, slot: str
) -> Iterator[Stack]:
    """The API served over `services`, its slot's adapter loaded; the slot unloaded after."""
    try:
        for url in serve(settings, services):
            wait_adapter_ready(url)
            yield Stack(url, settings, services)
    finally:
        unload_slot(vllm_url, slot)
