"""kill -9 of `tandem up` in each step of a release promote: after a restart exactly one
valid pair serves — its docs alias and active adapter agree with it, customers get it — and
the journal says which. `TANDEM_TEST_RELEASE_CRASH_AT` makes the server SIGKILL itself right
after the step it names (tandem/releases/promote.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import CORPUS, free_port
from tests.integration.adapter_kit import copy_adapters
from tests.integration.adapter_orchestrators import unload_slot
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, Up, running_up

from tandem.releases.promote import CRASH_AT_ENV

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SLOT = "crashtest"
QA = {"question": "What is the API rate limit per token?", "answer_terms": ["requests"],
      "file": "api/rate-limits.md", "heading": "Rate limits"}  # fmt: skip
OPEN_GATE = {"min_coverage": None, "min_source_hit": None, "min_compliance": None,
             "min_citation_validity": None, "max_failures": None}  # fmt: skip


@contextlib.contextmanager
def tandem_up(data: Path, vllm_url: str, crash_at: str | None = None) -> Iterator[Up]:
    """A real `tandem up` on the session's vLLM over `data`; its process group killed after."""
    port = free_port()
    env = dict(os.environ, TANDEM_VLLM__URL=vllm_url, TANDEM_DATA_DIR=str(data / "data"),
               TANDEM_PORT=str(port), TANDEM_API_KEYS=CHAT_KEY, TANDEM_ADMIN_KEYS=ADMIN_KEY,
               TANDEM_CORPUS=str(CORPUS / "v4.1"), TANDEM_CORPUS_RELEASE="v4.1",
               TANDEM_ADAPTERS_DIR=str(data / "adapters"), TANDEM_DEFAULT_SLOT=SLOT,
               TANDEM_RELEASES__QA_ROOTS=str(data / "qa"),
               TANDEM_RELEASES__MAX_DERIVED_QUESTIONS="1", TANDEM_GENERATION__MAX_TOKENS="16",
               TANDEM_ANSWERING__CROSS_ENCODER="false", TANDEM_ANSWERING__SUBJECT="false",
               TANDEM_INDEX__EMBED_PROCESS="false", TANDEM_DRAIN_S="1")  # fmt: skip
    env.pop(CRASH_AT_ENV, None)
    if crash_at is not None:
        env[CRASH_AT_ENV] = crash_at
    with running_up(env, data) as up:
        yield up


def admin(up: Up) -> httpx.Client:
    return up.client(ADMIN_KEY, timeout=900)


def plan(up: Up, release: str, docs: str, adapter: str, qa: Path) -> None:
    """Plan `release` and wait for its job to succeed."""
    body = {"release": release, "path": str(CORPUS / docs), "adapter": adapter,
            "qa": str(qa), "gate": OPEN_GATE}  # fmt: skip
    with admin(up) as client:
        job = client.post("/v1/admin/releases", json=body)
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 900
        while True:
            state = client.get(f"/v1/admin/jobs/{job.json()['job']}").json()
            if state["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, state
            time.sleep(1)
        assert state["status"] == "succeeded", state


def one_pair_serves(up: Up) -> dict[str, Any]:
    """The pair the pointer names is what customers get: docs alias, active adapter, answers."""
    with admin(up) as client:
        overview: dict[str, Any] = client.get("/v1/admin/releases").json()
        index = client.get("/v1/admin/index").json()["serving"]["collection"]
        slots = client.get("/v1/admin/adapters").json()["slots"]
    serving = overview["serving"]
    assert overview["pending"] is None and overview["drift"] == []
    active = next(s["active"] for s in slots if s["slot"] == SLOT)
    assert (index, f"{SLOT}@{active}") == (serving["collection"], serving["adapter"])
    with up.client(CHAT_KEY) as client:
        body = {"messages": [{"role": "user", "content": "What is the API rate limit?"}]}
        answer = client.post("/v1/chat", json=body).json()
    assert answer["index"]["collection"] == serving["collection"]
    assert answer["adapter"] == serving["adapter"]
    return overview


def test_kill_9_in_each_step_of_a_promote_leaves_one_pair_serving(
    tmp_path: Path, vllm_url: str
) -> None:
    copy_adapters(tmp_path / "adapters", SLOT)
    qa = tmp_path / "qa" / "qa.jsonl"
    qa.parent.mkdir()
    qa.write_text(json.dumps(QA) + "\n")
    try:
        with tandem_up(tmp_path, vllm_url) as up:
            plan(up, "first", "v4.1", f"{SLOT}@v1", qa)
            with admin(up) as client:
                assert client.post("/v1/admin/releases/first/promote").status_code == 200
            plan(up, "next", "v4.2", f"{SLOT}@v2", qa)
        for step, expected in [
            ("begun", "first"),
            ("switched", "next"),
            ("docs", "next"),
            ("adapter", "next"),
        ]:
            with tandem_up(tmp_path, vllm_url, crash_at=step) as up:
                with contextlib.suppress(httpx.TransportError), admin(up) as client:
                    response = client.post("/v1/admin/releases/next/promote")
                    pytest.fail(f"the promote answered instead of dying: {response.text}")
                assert up.process.wait(timeout=120) == -signal.SIGKILL
            with tandem_up(tmp_path, vllm_url) as up:
                overview = one_pair_serves(up)
                assert overview["serving"]["release"] == expected, (step, overview)
                last = overview["journal"][0]
                assert (last["op"], last["to"]) == ("promote", "next")
                assert last["step"] == ("aborted" if step == "begun" else "done"), last
                if expected == "next":  # back to `first` for the next step's kill
                    with admin(up) as client:
                        assert client.post("/v1/admin/releases/rollback").status_code == 200
                    assert one_pair_serves(up)["serving"]["release"] == "first"
    finally:
        unload_slot(vllm_url, SLOT)
