"""Routes check requests against the settings (`tandem.answering.limits`), never a number of
their own: `/v1/retrieve` its `top_k` and query as chat does, a review its corrected answer."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from tests.unit.api.stack import ADMIN, CHAT, Serve, edge_stores, log_answer

from tandem.settings import LimitSettings, RetrievalSettings


def retrieve(client: TestClient, **body: object) -> httpx.Response:
    payload = {"query": "open settings", **body}
    return client.post("/v1/retrieve", json=payload, headers={"Authorization": f"Bearer {CHAT}"})


def test_top_k_over_the_setting_is_refused_before_any_search(serve: Serve, tmp_path: Path) -> None:
    client = serve(edge_stores(tmp_path), retrieval=RetrievalSettings(max_top_k=10))
    for top_k in (11, 50, 10_000):
        response = retrieve(client, top_k=top_k)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == {
            "type": "bad_request",
            "message": "top_k must be between 1 and 10",
        }
    assert retrieve(client, top_k=10).status_code == 200
    assert len(retrieve(client).json()["chunks"]) == 1  # the default, on a one-chunk index


def test_the_settings_alone_decide_the_caps(serve: Serve, tmp_path: Path) -> None:
    """Raised settings are not undercut by a number in the schema (it capped top_k at 50 and
    the query at 4,000 characters)."""
    client = serve(
        edge_stores(tmp_path),
        retrieval=RetrievalSettings(max_top_k=60),
        limits=LimitSettings(max_message_chars=5_000),
    )
    assert retrieve(client, top_k=60).status_code == 200
    assert retrieve(client, query="settings " * 500).status_code == 200  # 4,500 characters
    long = retrieve(client, query="x" * 5_001)
    assert long.status_code == 400
    assert long.json()["error"]["message"] == "the query may have at most 5000 characters"


def test_a_corrected_answer_is_capped_by_the_message_setting(serve: Serve, tmp_path: Path) -> None:
    stores = edge_stores(tmp_path)
    client = serve(stores, limits=LimitSettings(max_message_chars=20_000))
    answer = log_answer(stores)
    rated = client.post(
        "/v1/feedback",
        json={"id": answer, "rating": "down"},
        headers={"Authorization": f"Bearer {CHAT}"},
    )
    assert rated.status_code == 202
    review = f"/v1/admin/feedback/{answer}/review"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    longer_than_before = client.post(review, json={"corrected": "y" * 17_000}, headers=admin)
    assert longer_than_before.status_code == 200, longer_than_before.text
    too_long = client.post(review, json={"corrected": "y" * 20_001}, headers=admin)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["message"] == (
        "a corrected answer may have at most 20000 characters"
    )
