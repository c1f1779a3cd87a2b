"""Every JSON route declares a pydantic response model, and answers what it answered before
(the models add no fields and drop none). The real app over the embedded store, adapter
folders on disk, vLLM played at the transport."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from tests.conftest import CORPUS
from tests.fakes import HIDDEN, FakeVllm, write_adapter
from tests.unit.api.stack import ADMIN, CHAT, Serve, edge_stores, indexed, log_answer
from tests.unit.releases.conftest import OPEN_GATE, App, open_app, release_settings

from tandem.api.app import create_app
from tandem.settings import AnsweringSettings, ModelSettings, Settings, VllmSettings
from tandem.stores.deployment import Stores

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
CHAT_AUTH = {"Authorization": f"Bearer {CHAT}"}
ENTRY_KEYS = {"release", "collection", "docs_release", "adapter"}  # a pair pointer's entry
PAIR_KEYS = ENTRY_KEYS | {
    "status", "created", "job", "qa", "gate", "forced", "changes", "error", "owner"
}  # fmt: skip


def test_every_json_route_declares_a_pydantic_response_model() -> None:
    undeclared = []
    for route in create_app(Settings()).routes:
        if not isinstance(route, APIRoute):
            continue
        if not isinstance(route.response_class, DefaultPlaceholder):
            continue  # not JSON: Prometheus text, the widget's script and page
        model = route.response_model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            undeclared.append(f"{sorted(route.methods)} {route.path}")
    assert undeclared == []


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    """v1 served before v2 (so v2 has a what-changed report), and one logged answer."""
    built = edge_stores(tmp_path)
    indexed(built, tmp_path, "v2", "Open Settings from the menu.")
    log_answer(built)
    return built


@pytest.fixture
def client(serve: Serve, stores: Stores, tmp_path: Path) -> TestClient:
    adapters = tmp_path / "adapters"
    for version in ("v1", "v2"):
        write_adapter(adapters / "support" / version)
    base_model = tmp_path / "base-model"  # one the small adapters fit
    base_model.mkdir()
    base = {"hidden_size": HIDDEN, "num_attention_heads": 4, "num_hidden_layers": 2}
    (base_model / "config.json").write_text(json.dumps(base))
    return serve(
        stores,
        model=ModelSettings(path=base_model),
        adapters_dir=adapters,
        index_roots=[str(tmp_path / "docs")],
        vllm=VllmSettings(max_lora_rank=8),
    )


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_health_answers(client: TestClient) -> None:
    assert ok(client.get("/healthz")) == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert set(ready) == {"ready", "checks"}
    checks = ready["checks"]
    assert {"vllm", "adapter", "index", "index_state", "release"} <= set(checks)
    assert checks["index_state"] == "serving" and checks["release"] == "v2"
    assert "index_error" not in checks  # only where a check failed, as before


def test_index_answers(client: TestClient, tmp_path: Path) -> None:
    overview = ok(client.get("/v1/admin/index", headers=ADMIN_AUTH))
    assert set(overview) == {"alias", "serving", "kept", "building"}
    assert set(overview["serving"]) == {"collection", "release", "changes"}
    newest = overview["kept"][0]
    assert set(newest) == {
        "collection", "release", "created", "serving", "counts", "changes", "previous", "seconds"
    }  # fmt: skip
    assert newest["release"] == "v2" and newest["changes"]["pages_changed"] == 1
    assert newest["previous"]["release"] == "v1" and isinstance(newest["seconds"], dict)

    changes = ok(client.get("/v1/admin/index/changes", headers=ADMIN_AUTH))
    assert set(changes) == {
        "release", "collection", "previous", "summary", "pages_added", "pages_changed",
        "pages_removed",
    }  # fmt: skip
    assert changes["pages_changed"] == [
        {"file": "settings.md", "headings_added": [], "headings_changed": ["Settings"],
         "headings_removed": []}
    ]  # fmt: skip

    back = ok(client.post("/v1/admin/index/rollback", headers=ADMIN_AUTH))
    assert back["serving"]["release"] == "v1" and set(back["previous"]) == {"collection"}

    job = ok(
        client.post(
            "/v1/admin/index",
            json={"path": str(tmp_path / "docs" / "v2"), "release": "v3"},
            headers=ADMIN_AUTH,
        ),
        202,
    )
    assert set(job) == {"job"}
    deadline = time.monotonic() + 30
    while (status := ok(client.get(f"/v1/admin/jobs/{job['job']}", headers=ADMIN_AUTH)))[
        "status"
    ] in {"queued", "running"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert set(status) == {"id", "kind", "status", "progress", "result", "error"}
    assert status["status"] == "succeeded", status["error"]


def test_adapter_answers(client: TestClient) -> None:
    overview = ok(client.get("/v1/admin/adapters", headers=ADMIN_AUTH))
    assert set(overview) == {"slots", "replicas"}
    (slot,) = overview["slots"]
    assert set(slot) == {
        "slot", "active", "served_name", "canary", "previous", "swap_running", "history",
        "versions",
    }  # fmt: skip
    assert set(slot["versions"][0]) == {
        "version", "served_name", "label", "role", "loaded_on", "requests", "errors", "card"
    }  # fmt: skip

    path = "/v1/admin/adapters/support/activate"
    canary = ok(client.post(path, json={"version": "v1", "percent": 20}, headers=ADMIN_AUTH))
    assert canary["changed"] is True and canary["canary"] == {"version": "v1", "percent": 20}
    assert {"loaded_on", "retiring", "seconds", "load_and_probe_seconds"} <= set(canary)
    again = ok(client.post(path, json={"version": "v1", "percent": 20}, headers=ADMIN_AUTH))
    assert set(again) == {"slot", "active", "canary", "previous", "changed"}  # nothing added
    rolled = ok(client.post("/v1/admin/adapters/support/rollback", headers=ADMIN_AUTH))
    assert rolled["changed"] is True and rolled["canary"] is None


def test_feedback_and_handoff_answers(client: TestClient) -> None:
    rated = client.post(
        "/v1/feedback", json={"id": "answer-1", "rating": "down", "comment": "x"}, headers=CHAT_AUTH
    )
    assert ok(rated, 202) == {"id": "answer-1", "rating": "down"}
    listed = ok(client.get("/v1/admin/feedback", headers=ADMIN_AUTH))
    item_keys = {
        "id", "rating", "comment", "rated_at", "question", "conversation", "answer", "sources",
        "adapter", "release", "pair", "corrected", "approved",
    }  # fmt: skip
    (item,) = listed["items"]
    assert set(item) == item_keys and set(item["sources"][0]) == {
        "n", "file", "heading", "release", "score", "snippet"
    }  # fmt: skip
    assert listed["summary"] == {
        "ratings": 1, "down": 1, "down_share": 1.0,
        "by_adapter": {"support@v1": {"ratings": 1, "down": 1, "down_share": 1.0}},
        "by_release": {"v2": {"ratings": 1, "down": 1, "down_share": 1.0}},
    }  # fmt: skip
    review = {"corrected": "Open Settings.", "approved": True}
    reviewed = ok(
        client.post("/v1/admin/feedback/answer-1/review", json=review, headers=ADMIN_AUTH)
    )
    assert set(reviewed) == item_keys and reviewed["corrected"] == "Open Settings."

    asked = client.post(
        "/v1/handoff", json={"id": "answer-1", "contact": "ann@example.com"}, headers=CHAT_AUTH
    )
    handoff = ok(asked, 202)["handoff"]
    listed = ok(client.get("/v1/admin/handoffs", headers=ADMIN_AUTH))
    assert listed["summary"] == {"pending": 1, "delivered": 0, "failed": 0}
    (record,) = listed["items"]
    assert set(record) == {
        "id", "status", "attempts", "last_error", "created_at", "delivered_at",
        "next_attempt_at", "answer_id", "outcome", "release", "adapter", "contact", "note",
        "transcript", "answered",
    }  # fmt: skip
    retried = ok(client.post(f"/v1/admin/handoffs/{handoff}/retry", headers=ADMIN_AUTH), 202)
    assert retried["id"] == handoff and set(retried) == set(record)


def test_openai_answers(serve: Serve, stores: Stores) -> None:
    checks = AnsweringSettings(gate=False, cross_encoder=False, subject=False)
    client = serve(stores, answering=checks)
    models = ok(client.get("/v1/models", headers=CHAT_AUTH))
    assert set(models) == {"object", "data"} and len(models["data"]) == 4
    assert set(models["data"][0]) == {"id", "object", "created", "owned_by"}

    question = [{"role": "user", "content": "How do I open settings?"}]
    body = {"model": "tandem-rag", "messages": question}
    answer = ok(client.post("/v1/chat/completions", json=body, headers=CHAT_AUTH))
    assert set(answer) == {
        "id", "object", "created", "model", "choices", "usage", "sources", "tandem"
    }  # fmt: skip
    (choice,) = answer["choices"]
    assert set(choice) == {"index", "finish_reason", "message"}
    assert set(choice["message"]) == {"role", "content"}
    assert set(answer["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert set(answer["sources"][0]) == {
        "n", "file", "heading", "release", "score", "snippet", "cited"
    }  # fmt: skip
    assert set(answer["tandem"]) == {
        "adapter", "index", "release", "outcome", "abstained", "timings_ms", "grounded",
        "warnings", "unsupported", "suggestions", "cited",
    }  # fmt: skip
    assert answer["tandem"]["index"] == {"release": "v2", "collection": ANY}

    streamed = client.post(
        "/v1/chat/completions", json={**body, "stream": True}, headers=CHAT_AUTH
    )  # the model is declared; a stream is sent as it is
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in streamed.text.strip().split("\n\n")]
    assert events[-1] == "[DONE]" and json.loads(events[0])["object"] == "chat.completion.chunk"


@pytest.fixture
def release_app(tmp_path: Path) -> Iterator[App]:
    """Release pairs over the corpus: v4.1 serving, adapters v1 to v3 of `support`."""
    replicas = [FakeVllm("http://vllm-a:8000")]
    yield from open_app(release_settings(tmp_path, replicas), replicas)


def test_release_answers(release_app: App) -> None:
    planned = ok(
        release_app.admin(
            "POST", "/v1/admin/releases",
            json={"release": "v4.2", "path": str(CORPUS / "v4.2"), "gate": OPEN_GATE,
                  "adapter": "support@v2"},
        ),
        202,
    )  # fmt: skip
    assert set(planned) == {"job", "release"} and planned["release"] == "v4.2"
    assert release_app.wait(planned["job"])["status"] == "succeeded"
    record = ok(release_app.admin("GET", "/v1/admin/releases/v4.2"))
    assert set(record) == PAIR_KEYS
    overview = ok(release_app.admin("GET", "/v1/admin/releases"))
    assert set(overview) == {
        "serving", "canary", "kept", "candidates", "pending", "journal", "drift"
    }  # fmt: skip
    assert set(overview["candidates"][0]) == PAIR_KEYS | {"role"}

    promoted = ok(release_app.admin("POST", "/v1/admin/releases/v4.2/promote", json={}))
    assert set(promoted) == {"changed", "serving", "canary", "journal"}
    assert set(promoted["serving"]) == ENTRY_KEYS | {"since"} and promoted["canary"] is None
    overview = ok(release_app.admin("GET", "/v1/admin/releases"))
    assert set(overview["serving"]) == PAIR_KEYS | {"since", "role", "figures"}
    assert set(overview["serving"]["figures"]) == {
        "release", "answers", "declined", "suggested", "errors", "down", "down_share",
        "declined_share", "error_share",
    }  # fmt: skip
    (before,) = overview["kept"]  # what served before any pair: no record of its own
    assert set(before) == ENTRY_KEYS | {"role", "figures"} and before["figures"] is None

    qa = f"{release_app.settings.releases.qa_roots[0]}/release.jsonl"  # the same docs: its QA
    plan = {"release": "v4.3", "path": str(CORPUS / "v4.2"), "gate": OPEN_GATE, "qa": qa}
    job = ok(release_app.admin("POST", "/v1/admin/releases", json=plan), 202)["job"]
    assert release_app.wait(job)["status"] == "succeeded"
    canary = {"canary": 0.5}
    ran = ok(release_app.admin("POST", "/v1/admin/releases/v4.3/promote", json=canary))
    assert set(ran["canary"]) == ENTRY_KEYS | {"share", "since"}
    overview = ok(release_app.admin("GET", "/v1/admin/releases"))
    assert set(overview["canary"]) == PAIR_KEYS | {"share", "since", "role", "figures"}
    back = ok(release_app.admin("POST", "/v1/admin/releases/rollback"))
    assert set(back) == {"changed", "serving", "canary", "journal"} and back["canary"] is None
