"""The plan job's stages, the adapters a candidate holds loaded, plans a crash left behind."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.conftest import CORPUS
from tests.unit.releases.conftest import OPEN_GATE, App

from tandem.releases.gate import derived_questions, gate_from
from tandem.releases.plan import PlanRequest
from tandem.releases.promote import owner
from tandem.stores.state import ReleasePair


def test_the_job_reports_index_then_load_then_eval_with_counts(app: App) -> None:
    seen: list[tuple[str, int, int]] = []
    request = PlanRequest("v4.2", CORPUS / "v4.2", "support@v2", None, gate_from(OPEN_GATE))

    def run(coroutine: Any) -> Any:
        return app.client.portal.call(lambda: coroutine)  # type: ignore[union-attr]

    result = app.releases.planner.run(request, "job-1", lambda *step: seen.append(step), run)
    stages = [stage for stage, _, _ in seen]
    assert stages[0] == "index" and stages[-1] == "eval"
    assert stages == sorted(stages, key=["index", "load", "eval"].index)
    assert ("load", 0, 2) in seen and ("load", 2, 2) in seen  # two vLLM replicas
    assert seen[-1] == ("eval", 20, 20)
    assert result["status"] == "gated" and result["job"] == "job-1"
    assert result["owner"] == owner()


def test_a_candidate_under_its_gate_keeps_its_adapter_loaded(app: App) -> None:
    registry = app.services.registry
    assert [v.version for v in registry.serving("support")] == ["v3"]
    app.services.stores.state.save_release_pair(
        ReleasePair("c", adapter="support@v2", status="evaluating", owner=owner(), job="j")
    )
    assert [v.version for v in registry.serving("support")] == ["v3", "v2"]


def test_a_plan_whose_process_died_is_marked_interrupted(app: App) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = {**owner(), "pid": int(dead.stdout), "process": "an-earlier-life"}
    state = app.services.stores.state
    state.save_release_pair(ReleasePair("c", status="evaluating", owner=gone, job="j"))
    state.save_release_pair(ReleasePair("d", status="building", owner=owner(), job="unknown"))
    assert sorted(app.releases.mark_dead_plans()) == ["c", "d"]
    pair = state.release_pair("c")
    assert pair is not None and pair.status == "error" and "interrupted" in str(pair.error)


def test_questions_come_from_added_and_changed_sections() -> None:
    changes = {
        "pages_added": [{"file": "sso.md", "headings": ["SSO", "SSO > Set up SAML"]}],
        "pages_changed": [
            {"file": "api.md", "headings_added": ["API > Limits"], "headings_changed": ["API"]}
        ],
        "pages_removed": [{"file": "old.md", "headings": ["Old"]}],
    }
    items = derived_questions(changes, 10)
    assert [(i.file, i.heading) for i in items] == [
        ("sso.md", "SSO"), ("sso.md", "Set up SAML"), ("api.md", "Limits"), ("api.md", "API")
    ]  # fmt: skip
    assert items[1].question == "What does the documentation say about Set up SAML?"
    assert len(derived_questions(changes, 2)) == 2


def test_a_release_may_name_its_docs_release(app: App) -> None:
    qa = f"{app.settings.releases.qa_roots[0]}/release.jsonl"
    job = app.plan("v4.2-hotfix", OPEN_GATE, adapter="support@v2", qa=qa, docs_release="v4.2")
    assert job["status"] == "succeeded", job
    pair = job["result"]
    assert (pair["release"], pair["docs_release"]) == ("v4.2-hotfix", "v4.2")
    assert pair["gate"]["questions"]["qa"] == 2  # the QA file's v4.2 question is asked too
    body = {"messages": [{"role": "user", "content": "What is the API rate limit?"}]}
    answer = app.admin("POST", "/v1/admin/releases/v4.2-hotfix/chat", json=body).json()
    assert answer["index"]["release"] == "v4.2"
