"""Errors at the API edge: a failing store is a logged 503, a bug a logged, opaque 500.

Real stores throughout: the embedded engine (qdrant-edge) with its pointer file broken, and
qdrant-client's local mode closed under a serving app; vLLM is played at the transport.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    Point,
    UpdateOperation,
)
from tests.conftest import free_port
from tests.unit.api.stack import ADMIN, CHAT, Serve, edge_stores, indexed

from tandem.errors import DependencyDown
from tandem.rag.embedder import HashEmbedder
from tandem.stores.deployment import Stores
from tandem.stores.docs import storage_failure
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import MemoryStateStore, ReleaseRecord

OPAQUE = {
    "error": {"type": "internal_error", "message": "unexpected server error; see the server log"}
}


def break_pointer(root: Path) -> None:
    """The edge pointer file turns into a folder: reading it fails with an OS error."""
    pointer = root / "index" / "pointers" / "docs.json"
    pointer.unlink()
    pointer.mkdir()


def retrieve(client: TestClient) -> httpx.Response:
    return client.post(
        "/v1/retrieve", json={"query": "open settings"}, headers={"Authorization": f"Bearer {CHAT}"}
    )


def test_a_bug_is_a_500_logged_once_with_its_traceback_and_opaque_to_the_client(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 32-d query against 64-d vectors: the engine refuses it, and that is our bug."""
    client = serve(edge_stores(tmp_path), HashEmbedder(dim=32))
    with caplog.at_level(logging.WARNING):
        response = retrieve(client)
    assert response.status_code == 500 and response.json() == OPAQUE
    assert "dim" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    assert "Vector dimension error" in str(logged[0].exc_info[1])  # type: ignore[index]


@pytest.mark.parametrize("backend", ["edge", "qdrant-client"])
def test_a_failing_store_is_a_logged_503_without_its_repr(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    if backend == "edge":
        client = serve(edge_stores(tmp_path))
        break_pointer(tmp_path)
    else:
        qdrant = QdrantClient(":memory:")
        docs = QdrantDocStore(qdrant, HashEmbedder().dim)
        client = serve(indexed(Stores(docs, MemoryStateStore()), tmp_path))
        qdrant.close()  # the store goes away under a serving app
    with caplog.at_level(logging.WARNING):
        response = retrieve(client)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["type"] == "dependency_unavailable"
    assert error["message"].startswith("the ") and str(tmp_path) not in response.text
    warned = [r for r in caplog.records if r.name == "tandem.stores"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.exc_info]  # expected: no traceback


def test_a_store_failing_under_an_admin_route_is_a_503_too(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`GET /v1/admin/index` reads the pointer without the retriever's wrapper."""
    client = serve(edge_stores(tmp_path))
    break_pointer(tmp_path)
    with caplog.at_level(logging.WARNING):
        response = client.get("/v1/admin/index", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "dependency_unavailable"
    assert [r.name for r in caplog.records if r.levelno >= logging.WARNING] == ["tandem.api"]


def test_readiness_reports_a_failing_store_and_metrics_keep_answering(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = serve(edge_stores(tmp_path))
    assert "tandem_index_points 1.0" in client.get("/metrics").text
    break_pointer(tmp_path)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    checks = ready.json()["checks"]
    assert checks["index"] is False and checks["index_state"] == "unavailable"
    assert checks["index_error"].startswith("the document store is unavailable")
    with caplog.at_level(logging.WARNING):
        assert client.get("/metrics").status_code == 200
    assert not [r for r in caplog.records if r.exc_info]  # the store's warning only


class UnreadableRecords(MemoryStateStore):
    """A state store whose reading of release records gets a bug once `broken` (a real
    subclass, not a mock)."""

    broken = False

    def release_record(self, collection: str) -> ReleaseRecord | None:
        if self.broken:
            raise KeyError("report")
        return super().release_record(collection)


def test_a_bug_in_the_probes_is_logged_and_the_probe_still_answers(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = UnreadableRecords()
    client = serve(edge_stores(tmp_path, state))
    state.broken = True
    with caplog.at_level(logging.ERROR):
        ready = client.get("/readyz")
        metrics = client.get("/metrics")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["index_state"] == "unavailable"
    assert checks["index_error"] == "unexpected error; see the server log"  # no repr
    assert metrics.status_code == 200 and "tandem_index_points" in metrics.text
    messages = [r.getMessage() for r in caplog.records if r.exc_info]
    assert messages == [
        "the readiness check of the index failed",
        "counting the serving index's points failed",
    ]


# --- which exceptions are the store failing, which are bugs --------------------------------
def edge_shard(tmp_path: Path) -> EdgeShard:
    config = EdgeConfig(vectors={"dense": EdgeVectorParams(size=4, distance=Distance.Cosine)})
    return EdgeShard.create(str(tmp_path / "shard"), config)


def test_a_closed_edge_shard_is_the_store_failing_and_a_wrong_request_a_bug(
    tmp_path: Path,
) -> None:
    shard = edge_shard(tmp_path)
    with pytest.raises(Exception, match="Vector dimension error") as wrong:
        shard.update(UpdateOperation.upsert_points([Point(1, {"dense": [1.0, 0.0]}, {})]))
    assert storage_failure(wrong.value) is None
    shard.close()
    with pytest.raises(Exception, match="Service runtime error") as closed:
        shard.count(CountRequest(exact=True))
    down = storage_failure(closed.value)
    assert isinstance(down, DependencyDown) and down.status == 503


def test_qdrant_client_transport_and_server_errors() -> None:
    nobody = QdrantClient(
        url=f"http://127.0.0.1:{free_port()}", timeout=2, check_compatibility=False
    )
    with pytest.raises(Exception) as refused:
        nobody.get_collections()
    assert isinstance(storage_failure(refused.value), DependencyDown)
    for status in (500, 502, 503, 401, 403, 429):
        answer = UnexpectedResponse(status, "", b"{}", httpx.Headers())
        assert isinstance(storage_failure(answer), DependencyDown), status
    for status in (400, 404, 422):  # a request we got wrong
        assert storage_failure(UnexpectedResponse(status, "", b"{}", httpx.Headers())) is None


def test_sqlite_and_os_errors_are_the_store_failing(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError) as unopenable:
        sqlite3.connect(str(tmp_path / "missing" / "state.sqlite3"))
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as corrupt:
        sqlite3.connect(str(garbage)).execute("SELECT 1 FROM sqlite_master")
    database = sqlite3.connect(":memory:")
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    database.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as duplicate:
        database.execute("INSERT INTO t VALUES (1)")
    assert isinstance(storage_failure(unopenable.value), DependencyDown)
    assert isinstance(storage_failure(corrupt.value), DependencyDown)
    assert storage_failure(duplicate.value) is None  # a bug in our SQL
    timeout = storage_failure(TimeoutError("read timed out"))
    assert timeout is not None and "timeout" in str(timeout)
    for bug in (ValueError("x"), KeyError("k"), TypeError("t"), RuntimeError("closed over")):
        assert storage_failure(bug) is None
