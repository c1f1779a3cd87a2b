"""A release canary: figures per pair, and the watch that rolls a worse canary back."""

from __future__ import annotations

import time
from typing import Any

from tests.unit.releases.conftest import CHAT, OPEN_GATE, App

from tandem.releases.figures import PairFigures, canary_verdict
from tandem.releases.transitions import window
from tandem.settings import ReleaseSettings
from tandem.stores.feedback import AnswerRecord


def serve_and_canary(app: App) -> dict[str, Any]:
    """Pair `a` serves (support@v1), pair `b` (support@v2) runs as a 50 % canary."""
    qa = f"{app.settings.releases.qa_roots[0]}/release.jsonl"
    assert app.plan("a", OPEN_GATE, adapter="support@v1")["status"] == "succeeded"
    assert app.admin("POST", "/v1/admin/releases/a/promote").status_code == 200
    assert app.plan("b", OPEN_GATE, adapter="support@v2", qa=qa)["status"] == "succeeded"
    response = app.admin("POST", "/v1/admin/releases/b/promote", json={"canary": 0.5})
    assert response.status_code == 200, response.text
    overview = app.overview()
    assert overview["canary"]["release"] == "b" and overview["canary"]["share"] == 0.5
    assert all("support-v2" in r.loaded for r in app.replicas)  # loaded before the switch
    return overview


def tick(app: App) -> None:
    app.client.portal.call(app.releases.tick)  # type: ignore[union-attr]


def test_chats_are_counted_against_the_pair_that_answered(app: App) -> None:
    qa = f"{app.settings.releases.qa_roots[0]}/release.jsonl"
    assert app.plan("a", OPEN_GATE, adapter="support@v1", qa=qa)["status"] == "succeeded"
    assert app.admin("POST", "/v1/admin/releases/a/promote").status_code == 200
    for n in range(3):
        body = {"messages": [{"role": "user", "content": f"How do I export data, take {n}?"}]}
        assert app.client.post("/v1/chat", json=body, headers=CHAT).status_code == 200
    tick(app)
    figures = app.overview()["serving"]["figures"]
    assert figures["answers"] == 3 and figures["errors"] == 0 and figures["down_share"] == 0


def test_a_canary_with_more_errors_is_rolled_back_with_its_reason(app: App) -> None:
    serve_and_canary(app)
    current = app.releases.pointer.pointer(fresh=True)
    win = window(current)
    assert win is not None
    counters = app.releases.counters
    for _ in range(20):
        counters.count(win, "a", "answered")
    for _ in range(5):
        counters.count(win, "b", "answered")
    tick(app)  # 5 turns: below min_answers (10), nothing is judged yet
    assert app.overview()["canary"]["figures"]["answers"] == 5
    for _ in range(3):
        counters.count(win, "b", None)
    for _ in range(2):
        counters.count(win, "b", "declined")
    tick(app)  # 10 turns, 3 failed: 0.3 against 0.0, over the 0.05 margin
    overview = app.overview()
    assert overview["canary"] is None and overview["serving"]["release"] == "a"
    last = overview["journal"][0]
    assert last["op"] == "rollback" and last["ended_canary"] == "b"
    assert last["by"] == "tandem (canary watch)" and "error share 0.300" in last["reason"]
    assert "canary rolled back" in app.admin("GET", "/v1/admin/releases/b").json()["error"]


def test_a_canary_thumbed_down_more_is_rolled_back(app: App) -> None:
    overview = serve_and_canary(app)
    win = window(app.releases.pointer.pointer(fresh=True))
    assert win is not None
    for _ in range(10):
        app.releases.counters.count(win, "a", "answered")
        app.releases.counters.count(win, "b", "answered")
    log = app.services.feedback
    assert log is not None
    canary = overview["canary"]
    for n in range(3):  # what the customers said about three of the canary's answers
        record = AnswerRecord(
            f"chat-{n}", time.time(), [{"role": "user", "content": "q"}], "a", [],
            canary["adapter"], canary["docs_release"], canary["collection"], "answered",
        )  # fmt: skip
        log.record_answer(record)
        log.rate(record.id, "down", "wrong")
    tick(app)
    overview = app.overview()
    assert overview["canary"] is None
    assert "thumbs-down share 0.300" in overview["journal"][0]["reason"]


def test_the_verdict_needs_enough_turns_and_a_margin() -> None:
    settings = ReleaseSettings(min_answers=10, max_down_margin=0.1, max_error_margin=0.05)
    serving = PairFigures("a", answers=100, down=10, errors=1)
    assert canary_verdict(serving, PairFigures("b", answers=9, down=9), settings) is None
    assert canary_verdict(serving, PairFigures("b", answers=10, down=2), settings) is None
    down, errors = PairFigures("b", answers=10, down=3), PairFigures("b", answers=8, errors=2)
    assert "thumbs-down" in str(canary_verdict(serving, down, settings))
    assert "error share" in str(canary_verdict(serving, errors, settings))
