"""Release day on the real API: index a release, re-index the next one while queries run,
answers come from the new release only, roll back, answers come from the old one again.

Runs on real paperless-ngx docs (v2.20.15 -> v3.0.5) and on the sample product (v4.1 -> v4.2),
with the real embedder and embedded Qdrant. Retrieval only: no vLLM is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import CORPUS, free_port, paperless_release
from tests.integration.app_server import serve
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, stack_settings

from tandem.api.app import build_services
from tandem.indexing.embed_process import index_embedder_factory
from tandem.rag.embedder import Embedder

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JOB_TIMEOUT_S = 900


@dataclass(frozen=True)
class Probe:
    """A question whose answer changed: the page, and a phrase only each release has."""

    query: str
    file: str
    old_phrase: str
    new_phrase: str


@dataclass
class Api:
    url: str

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers=_auth(ADMIN_KEY))

    def chat(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers=_auth(CHAT_KEY))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(tmp_path: Path, embedder: Embedder) -> Iterator[Api]:
    """A fresh store and the real API on it; the vLLM URL points nowhere (retrieval only).

    Index jobs embed in a child process, as by default (TANDEM_INDEX__EMBED_PROCESS).
    """
    settings = stack_settings(tmp_path, f"http://127.0.0.1:{free_port()}")
    factory = index_embedder_factory(settings)
    for url in serve(settings, build_services(settings, embedder, index_embedder=factory)):
        yield Api(url)


def index(api: Api, folder: Path, release: str) -> dict[str, Any]:
    """Run an index job through the admin API and return its finished state."""
    with api.admin() as http:
        response = http.post("/v1/admin/index", json={"path": str(folder), "release": release})
        assert response.status_code == 202, response.text
        job_id = response.json()["job"]
        busy = http.post("/v1/admin/index", json={"path": str(folder), "release": release})
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"]["type"] == "conflict"
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (job := http.get(f"/v1/admin/jobs/{job_id}").json())["status"] not in {
            "succeeded",
            "failed",
        }:
            assert time.monotonic() < deadline, f"index job still {job['status']}: {job}"
            time.sleep(1)
    assert job["status"] == "succeeded", job["error"]
    return dict(job["result"])


def retrieve(http: httpx.Client, query: str) -> dict[str, Any]:
    response = http.post("/v1/retrieve", json={"query": query, "top_k": 6})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_answers_from(api: Api, release: str, probe: Probe, phrase: str) -> None:
    with api.chat() as http:
        body = retrieve(http, probe.query)
    assert body["index"]["release"] == release
    assert {c["release"] for c in body["chunks"]} == {release}
    page = [c["text"] for c in body["chunks"] if c["file"] == probe.file]
    assert page, f"{probe.file} not retrieved for {probe.query!r}: {body['chunks']}"
    assert any(phrase in text for text in page), page


@dataclass
class Traffic:
    """Queries sent while a re-index runs: failures, latencies, the releases that answered."""

    query: str
    stop: threading.Event = field(default_factory=threading.Event)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)

    def run(self, api: Api) -> None:
        with api.chat() as http:
            while not self.stop.is_set() and len(self.latencies) < 5_000:
                started = time.perf_counter()
                try:
                    body = retrieve(http, self.query)
                    chunk_releases = {c["release"] for c in body["chunks"]}
                    assert chunk_releases == {body["index"]["release"]}, chunk_releases
                    self.releases.append(body["index"]["release"])
                except (AssertionError, httpx.HTTPError) as error:
                    self.failures.append(repr(error))
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.1)


def reindex_under_traffic(api: Api, folder: Path, release: str, query: str) -> Traffic:
    traffic = Traffic(query)
    thread = threading.Thread(target=traffic.run, args=(api,), daemon=True)
    thread.start()
    try:
        report = index(api, folder, release)
        time.sleep(1.0)  # a few queries on the new release too
    finally:
        traffic.stop.set()
        thread.join(timeout=60)
    traffic.releases.append(f"report:{report['embedded']}:{report['reused']}")
    return traffic


def release_day(api: Api, old: tuple[Path, str], new: tuple[Path, str], probe: Probe) -> None:
    """The whole flow: index old, re-index new under traffic, check, roll back, check."""
    first = index(api, *old)
    assert first["embedded"] == first["chunks"] > 0
    assert_answers_from(api, old[1], probe, probe.old_phrase)

    traffic = reindex_under_traffic(api, *new, probe.query)
    assert traffic.failures == []
    served = set(traffic.releases[:-1])
    assert served <= {old[1], new[1]} and old[1] in served, served
    _, embedded, reused = traffic.releases[-1].split(":")
    assert int(reused) > 0 and int(embedded) > 0
    assert_answers_from(api, new[1], probe, probe.new_phrase)

    with api.admin() as http:
        overview = http.get("/v1/admin/index").json()
        assert overview["serving"]["release"] == new[1]
        assert [k["release"] for k in overview["kept"]] == [new[1], old[1]]
        changes = http.get("/v1/admin/index/changes", params={"release": new[1]}).json()
        assert probe.file in {p["file"] for p in changes["pages_changed"]}
        back = http.post("/v1/admin/index/rollback")
        assert back.status_code == 200, back.text
        assert back.json()["serving"]["release"] == old[1]
        assert http.post("/v1/admin/index/rollback").status_code == 409
    assert_answers_from(api, old[1], probe, probe.old_phrase)


def test_paperless_v2_to_v3_release_day(api: Api) -> None:
    probe = Probe(
        query="Which values does PAPERLESS_DBENGINE accept for the database engine?",
        file="configuration.md",
        old_phrase="Available options are `postgresql` and `mariadb`",
        new_phrase="Accepted values are `sqlite`, `postgresql`",
    )
    release_day(
        api,
        (paperless_release("v2.20.15"), "v2.20.15"),
        (paperless_release("v3.0.5"), "v3.0.5"),
        probe,
    )
    with api.admin() as http:
        changes = http.get("/v1/admin/index/changes", params={"release": "v3.0.5"}).json()
    added = {p["file"]: p["headings"] for p in changes["pages_added"]}
    assert "migration-v3.md" in added and added["migration-v3.md"]


def test_sample_product_v41_to_v42_release_day(api: Api) -> None:
    probe = Probe(
        query="How many API requests per minute may one token send?",
        file="api/rate-limits.md",
        old_phrase="60 requests per minute",
        new_phrase="120 requests per minute",
    )
    release_day(api, (CORPUS / "v4.1", "v4.1"), (CORPUS / "v4.2", "v4.2"), probe)
