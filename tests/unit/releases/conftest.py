"""The real app over the embedded stores (edge + SQLite), the hash embedder and two fake vLLM
replicas played at the HTTP transport; adapters v1 and v2 of `support`; v4.1 serving."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import CORPUS
from tests.fakes import HIDDEN, FakeVllm, write_adapter

from tandem.api.app import build_services, create_app
from tandem.api.deps import Services
from tandem.indexing.reindex import index_release
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.releases.service import Releases
from tandem.settings import (
    AdapterSettings,
    AnsweringSettings,
    GenerationSettings,
    ReleaseSettings,
    Settings,
    VllmSettings,
)

ADMIN = {"Authorization": "Bearer admin"}
CHAT = {"Authorization": "Bearer chat"}
QA = [
    {"question": "What is the API rate limit per token?", "answer_terms": ["120 requests"],
     "file": "api/rate-limits.md", "heading": "Rate limits", "release": "v4.2"},
    {"question": "How big can an invoice attachment be?", "answer_terms": ["25 MB"],
     "file": "invoicing/create-invoice.md", "heading": "Attachments"},
]  # fmt: skip
OPEN_GATE = {
    "min_coverage": None,
    "min_source_hit": None,
    "min_compliance": None,
    "min_citation_validity": None,
    "max_failures": 0,
}


@dataclass
class App:
    client: TestClient
    services: Services
    replicas: list[FakeVllm]
    settings: Settings

    @property
    def releases(self) -> Releases:
        releases: Releases = self.client.app.state.releases  # type: ignore[attr-defined]
        return releases

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, path, headers=ADMIN, **kw)

    def plan(self, release: str, gate: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
        """Plan a release of corpus/v4.2 and wait for its job; returns the job's last state."""
        request = {"release": release, "path": str(CORPUS / "v4.2"), "gate": gate, **body}
        response = self.admin("POST", "/v1/admin/releases", json=request)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["job"])

    def wait(self, job: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state: dict[str, Any] = self.admin("GET", f"/v1/admin/jobs/{job}").json()
            if state["status"] in ("succeeded", "failed"):
                return state
            time.sleep(0.05)
        raise AssertionError(f"job {job} did not finish")

    def overview(self) -> dict[str, Any]:
        body: dict[str, Any] = self.admin("GET", "/v1/admin/releases").json()
        return body


def release_settings(
    root: Path, replicas: list[FakeVllm], create: bool = True, **releases: Any
) -> Settings:
    """Settings over `root`; `create` writes the adapters, the QA file and the base model."""
    adapters = root / "adapters"
    if create:
        for version in ("v1", "v2", "v3"):
            write_adapter(adapters / "support" / version)
        (root / "qa").mkdir()
        (root / "qa" / "release.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QA))
    settings = Settings(
        data_dir=root / "data",
        models_dir=root / "models",
        adapters_dir=adapters,
        api_keys=["chat"],
        admin_keys=["admin"],
        index_roots=[str(CORPUS)],
        vllm=VllmSettings(urls=[r.url for r in replicas], max_lora_rank=8),
        adapter=AdapterSettings(unload_grace_s=0.0, check_interval_s=3600),
        answering=AnsweringSettings(gate=False, cross_encoder=False, subject=False),
        generation=GenerationSettings(max_tokens=32),
        releases=ReleaseSettings(qa_roots=[str(root / "qa")], watch_interval_s=3600, **releases),
    )
    if create:
        settings.model_path.mkdir(parents=True)  # a base model the fake adapters fit
        base = {"hidden_size": HIDDEN, "num_attention_heads": 4, "num_hidden_layers": 2}
        (settings.model_path / "config.json").write_text(json.dumps(base))
    return settings


def open_app(settings: Settings, replicas: list[FakeVllm], index: bool = True) -> Iterator[App]:
    embedder = HashEmbedder()
    pool = VllmPool([r.client() for r in replicas])
    services = build_services(settings, embedder, pool=pool)
    if index:
        index_release(services.stores, embedder, CORPUS / "v4.1", "v4.1", "docs")
    app = create_app(settings, services_factory=lambda _: services)
    with TestClient(app) as client:
        deadline = time.monotonic() + 10  # the adapter check pins the newest version at start
        while not services.registry.pointer("support", fresh=True).get("active"):
            assert time.monotonic() < deadline, "the adapter check never pinned a version"
            time.sleep(0.02)
        yield App(client, services, replicas, settings)


@pytest.fixture
def replicas() -> list[FakeVllm]:
    return [FakeVllm("http://vllm-a:8000"), FakeVllm("http://vllm-b:8000")]


@pytest.fixture
def app(tmp_path: Path, replicas: list[FakeVllm]) -> Iterator[App]:
    yield from open_app(release_settings(tmp_path, replicas, min_answers=10), replicas)
