"""Every JSON route declares a pydantic response model, and answers what it answered before
(the models add no fields and drop none). The real app over the embedded store, adapter
folders on disk, vLLM played at the transport."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from tests.fakes import HIDDEN, write_adapter
from tests.unit.api.stack import ADMIN, CHAT, Serve, edge_stores, indexed, log_answer

from tandem.api.app import create_app
from tandem.api.routes import openai, releases
from tandem.settings import ModelSettings, Settings, VllmSettings
from tandem.stores.deployment import Stores

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
CHAT_AUTH = {"Authorization": f"Bearer {CHAT}"}


def test_every_json_route_declares_a_pydantic_response_model() -> None:
    # in the works (issue 30): routes/openai.py is being rewritten and routes/releases.py is
    # new; both get their models there, and then leave this list
    rewritten = {
        (r.path, frozenset(r.methods))
        for module in (openai, releases)
        for r in module.router.routes
        if isinstance(r, APIRoute)
    }
    undeclared = []
    for route in create_app(Settings()).routes:
        if not isinstance(route, APIRoute) or (route.path, frozenset(route.methods)) in rewritten:
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
        "adapter", "release", "corrected", "approved",
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
