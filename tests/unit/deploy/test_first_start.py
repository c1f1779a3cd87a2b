"""The first start of a server deployment: a fresh Qdrant has no index yet.

The index job (compose `index`, deploy/kubernetes/index-job.yaml) builds the first release
straight into Qdrant; meanwhile /readyz stays 503 but says `index_state: "empty"`, which an
operator (and the runbook) tells apart from `"unavailable"`, a store that is broken.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from tandem.api.routes.health import index_readiness
from tandem.errors import DependencyDown
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import IndexInfo, Retriever
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.qdrant_docs import QdrantDocStore
from tandem.stores.state import MemoryStateStore


def retriever_on(client: QdrantClient) -> Retriever:
    embedder = HashEmbedder()
    stores = Stores(QdrantDocStore(client, embedder.dim), MemoryStateStore())
    return Retriever(stores, embedder, "docs", 10)


@pytest.fixture
def retriever() -> Retriever:
    return retriever_on(QdrantClient(location=":memory:"))


def check(index_info: Any) -> dict[str, Any]:
    return asyncio.run(index_readiness(index_info))


def test_a_fresh_store_is_empty_not_broken(retriever: Retriever) -> None:
    checks = check(retriever.index_info)
    assert checks["index"] is False and checks["index_state"] == "empty"
    assert "POST /v1/admin/index" in checks["index_error"]


def test_an_index_serves_once_the_alias_exists(retriever: Retriever) -> None:
    retriever.stores.docs.create_collection("docs-v1")
    retriever.stores.docs.move_pointer("docs", "docs-v1")
    checks = check(retriever.index_info)
    assert checks["index"] is True and checks["index_state"] == "serving"


def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = QdrantClient(url=f"http://127.0.0.1:{port}", timeout=2, check_compatibility=False)
    checks = check(retriever_on(client).index_info)
    assert checks["index"] is False and checks["index_state"] == "unavailable"
    assert checks["index_error"]


def test_a_domain_error_keeps_its_message() -> None:
    def down() -> IndexInfo:
        raise DependencyDown("Qdrant answered 401: wrong api-key")

    assert check(down)["index_error"] == "Qdrant answered 401: wrong api-key"


def test_a_missing_adapters_folder_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Set TANDEM_ADAPTERS_DIR"):
        Settings(adapters_dir=tmp_path / "not-mounted")
    assert Settings(adapters_dir=tmp_path).adapters_dir == tmp_path
