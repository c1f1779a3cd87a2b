"""SIGTERM drains: streams in flight finish within `drain_s`; longer ones are cut, then it stops.

The real app under the server `tandem up` runs (`server_config`), with vLLM played at the
transport by a slow stream; the shutdown is uvicorn's own SIGTERM path (`handle_exit`).
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from fastapi.testclient import TestClient
from tests.conftest import free_port
from tests.fakes import FakeVllm, fake_services, unit_settings

from tandem.api.app import ServicesFactory, create_app
from tandem.cli.up import server_config

DELTAS = 10


def slow_vllm(delay_s: float) -> ServicesFactory:
    """Services whose vLLM streams `DELTAS` deltas, each `delay_s` after the one before."""
    words = [f"w{n} " for n in range(DELTAS)]
    return fake_services(FakeVllm(reply=words, usage=(5, DELTAS), delta_delay_s=delay_s))


def stream_then_sigterm(tmp_path: Path, drain_s: float, delay_s: float) -> tuple[list[str], float]:
    """Events of one stream during which the server got SIGTERM; seconds the stop took."""
    settings = unit_settings(tmp_path, port=free_port(), drain_s=drain_s)
    app = create_app(settings, services_factory=slow_vllm(delay_s))
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


def test_streams_in_flight_finish_before_the_server_stops(tmp_path: Path) -> None:
    events, _ = stream_then_sigterm(tmp_path, drain_s=10, delay_s=0.1)
    assert events[0] == "sources" and events[-1] == "done"


def test_a_stream_longer_than_the_drain_is_cut_and_the_server_stops(tmp_path: Path) -> None:
    events, took = stream_then_sigterm(tmp_path, drain_s=1, delay_s=0.5)
    assert "done" not in events
    assert took < 4.0  # bounded: the drain, not the stream's remaining 4 s


def test_a_server_app_freezes_what_start_up_built_and_a_test_app_does_not(
    tmp_path: Path,
) -> None:
    """Full garbage collections then skip start-up's objects (~350 ms with the embedder's)."""
    settings = unit_settings(tmp_path, port=free_port())
    gc.unfreeze()
    try:
        with TestClient(create_app(settings, slow_vllm(0.0))):
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(settings, slow_vllm(0.0), freeze=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
