"""Plan → gate → promote → roll back through the admin API of the real app (fake vLLM)."""

from __future__ import annotations

from tests.unit.releases.conftest import ADMIN, CHAT, OPEN_GATE, App

from tandem.releases.plan import CANDIDATE_POINTER


def serving_docs(app: App) -> str | None:
    return app.services.stores.docs.pointer_target("docs")


def active(app: App) -> str | None:
    return app.services.registry.pointer("support", fresh=True).get("active")


def test_a_plan_builds_a_candidate_that_serves_nothing(app: App) -> None:
    before_docs, before_adapter = serving_docs(app), active(app)
    qa = f"{app.settings.releases.qa_roots[0]}/release.jsonl"
    job = app.plan("v4.2", OPEN_GATE, adapter="support@v2", qa=qa)
    assert job["status"] == "succeeded", job
    assert job["progress"]["stage"] == "eval"
    pair = app.admin("GET", "/v1/admin/releases/v4.2").json()
    assert pair["status"] == "gated" and pair["gate"]["passed"] is True
    assert pair["gate"]["questions"]["qa"] == 2  # both QA items are for v4.2 or for any
    assert pair["gate"]["questions"]["changed_pages"] == 20  # capped by max_derived_questions
    assert pair["changes"]["summary"]["pages_added"] == 2
    # nothing that serves moved; the adapter is loaded on both replicas, not active
    assert serving_docs(app) == before_docs and active(app) == before_adapter
    assert app.services.stores.docs.pointer_target(CANDIDATE_POINTER) == pair["collection"]
    assert all("support-v2" in r.loaded for r in app.replicas)
    overview = app.overview()
    assert overview["serving"] is None
    assert [c["release"] for c in overview["candidates"]] == ["v4.2"]


def test_the_candidate_route_answers_with_the_pair_for_admins_only(app: App) -> None:
    assert app.plan("v4.2", OPEN_GATE, adapter="support@v2")["status"] == "succeeded"
    collection = app.admin("GET", "/v1/admin/releases/v4.2").json()["collection"]
    body = {"messages": [{"role": "user", "content": "What is the API rate limit?"}]}
    answer = app.admin("POST", "/v1/admin/releases/v4.2/chat", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["adapter"] == "support@v2"
    assert answer.json()["index"] == {"release": "v4.2", "collection": collection}
    refused = app.client.post("/v1/admin/releases/v4.2/chat", json=body, headers=CHAT)
    assert refused.status_code == 403
    served = app.client.post("/v1/chat", json=body, headers=CHAT).json()  # customers: unchanged
    assert served["index"]["release"] == "v4.1" and served["adapter"] == "support@v3"


def test_promote_moves_docs_and_adapter_as_one_pair_and_rollback_returns(app: App) -> None:
    old_docs = serving_docs(app)
    assert app.plan("v4.2", OPEN_GATE, adapter="support@v2")["status"] == "succeeded"
    pair = app.admin("GET", "/v1/admin/releases/v4.2").json()
    promoted = app.admin("POST", "/v1/admin/releases/v4.2/promote", json={})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["serving"]["release"] == "v4.2"
    assert serving_docs(app) == pair["collection"] and active(app) == "v2"
    overview = app.overview()
    assert overview["serving"]["release"] == "v4.2" and overview["pending"] is None
    assert overview["journal"][0]["op"] == "promote" and overview["journal"][0]["step"] == "done"
    assert overview["drift"] == []
    assert [k["release"] for k in overview["kept"]] == ["v4.1+support@v3"]  # what served before
    # a second pair (the same docs: only the QA file's questions), then back to the first
    qa = f"{app.settings.releases.qa_roots[0]}/release.jsonl"
    assert app.plan("v4.3", OPEN_GATE, adapter="support@v1", qa=qa)["status"] == "succeeded"
    assert app.admin("POST", "/v1/admin/releases/v4.3/promote").status_code == 200
    assert active(app) == "v1" and app.overview()["kept"][0]["release"] == "v4.2"
    back = app.admin("POST", "/v1/admin/releases/rollback")
    assert back.status_code == 200, back.text
    assert back.json()["serving"]["release"] == "v4.2"
    assert serving_docs(app) == pair["collection"] and active(app) == "v2"
    assert old_docs != pair["collection"]
    assert app.admin("POST", "/v1/admin/releases/v4.2/promote").status_code == 409  # serving
    # and back to what served before any pair
    assert app.admin("POST", "/v1/admin/releases/rollback").status_code == 200
    assert serving_docs(app) == old_docs and active(app) == "v3"
    assert app.overview()["serving"]["release"] == "v4.1+support@v3"
    assert app.admin("POST", "/v1/admin/releases/rollback").status_code == 409  # nothing older


def test_a_failed_gate_changes_nothing_and_409s_unless_forced(app: App) -> None:
    before_docs, before_adapter = serving_docs(app), active(app)
    strict = {**OPEN_GATE, "min_compliance": 0.9}  # the fake's answers are not house format
    assert app.plan("v4.2", strict, adapter="support@v2")["status"] == "succeeded"
    pair = app.admin("GET", "/v1/admin/releases/v4.2").json()
    assert pair["gate"]["passed"] is False
    assert any("format compliance" in v for v in pair["gate"]["violations"])
    refused = app.admin("POST", "/v1/admin/releases/v4.2/promote", json={})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["type"] == "gate_failed" and error["violations"] == pair["gate"]["violations"]
    assert "format compliance" in error["message"]
    assert serving_docs(app) == before_docs and active(app) == before_adapter
    assert app.overview()["serving"] is None
    forced = app.admin("POST", "/v1/admin/releases/v4.2/promote", json={"force": True})
    assert forced.status_code == 200, forced.text
    assert app.overview()["journal"][0]["forced"] == pair["gate"]["violations"]
    record = app.admin("GET", "/v1/admin/releases/v4.2").json()
    assert record["forced"][0]["violations"] == pair["gate"]["violations"]
    assert record["forced"][0]["by"].startswith("key:")


def test_bad_requests_are_refused_before_any_job(app: App) -> None:
    def plan(**body: object) -> int:
        request = {"release": "v9", "path": str(app.settings.index_roots[0]) + "/v4.2", **body}
        return int(app.admin("POST", "/v1/admin/releases", json=request).status_code)

    assert plan(path="/etc") == 403
    assert plan(qa="/etc/passwd") == 403
    assert plan(adapter="support@v9") == 404
    assert plan(adapter="../x") == 422
    assert plan(release="../v9") == 422
    assert plan(gate={"min_everything": 1}) == 400
    chat = app.client.post("/v1/admin/releases", json={"release": "v9", "path": "x"}, headers=CHAT)
    assert chat.status_code == 403
    assert app.admin("POST", "/v1/admin/releases/nope/promote").status_code == 404
    assert app.admin("POST", "/v1/admin/releases/rollback").status_code == 409
    assert app.client.get("/v1/admin/releases", headers=ADMIN).json()["candidates"] == []
