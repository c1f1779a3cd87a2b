"""The real app over the stores a test gives it, vLLM played at the transport (`serve`, in
this folder's conftest), and stores to give it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from tests.fakes import FakeVllm

from tandem.api.app import build_services, create_app
from tandem.api.deps import Services
from tandem.indexing.reindex import index_release
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.edge_docs import EdgeDocStore
from tandem.stores.feedback import AnswerRecord
from tandem.stores.state import MemoryStateStore

CHAT, ADMIN = "chat-key", "admin-key"
Serve = Callable[..., TestClient]


def indexed(
    stores: Stores, root: Path, release: str = "v1", page: str = "Open Settings."
) -> Stores:
    """`stores` serving `release`: one page, `settings.md`, with `page` as its text."""
    folder = root / "docs" / release
    folder.mkdir(parents=True)
    (folder / "settings.md").write_text(f"# Settings\n\n{page}\n")
    index_release(stores, HashEmbedder(), folder, release, "docs")
    return stores


def edge_stores(root: Path, state: MemoryStateStore | None = None) -> Stores:
    """The embedded engine under `root`, serving release v1."""
    docs = EdgeDocStore(root / "index", HashEmbedder().dim)
    return indexed(Stores(docs, state or MemoryStateStore()), root)


def log_answer(stores: Stores, answer_id: str = "answer-1") -> str:
    """An answer in the answer log, as the chat turn keeps it (feedback and handoffs need one)."""
    stores.answers.record_answer(
        AnswerRecord(
            id=answer_id,
            created=time.time(),
            conversation=[{"role": "user", "content": "How do I open settings?"}],
            answer="Open Settings from the menu. [1]",
            sources=[
                {
                    "n": 1,
                    "file": "settings.md",
                    "heading": "Settings",
                    "release": "v2",
                    "text": "Open Settings from the menu.",
                    "score": 0.9,
                }
            ],  # fmt: skip
            adapter="support@v1",
            release="v2",
            outcome="answered",
        )
    )
    return answer_id


def serving(data_dir: Path) -> Iterator[Serve]:
    """`serve(stores, embedder=None, **settings)` starts an app with chat and admin keys;
    every app it started stops when the iterator ends."""
    clients: list[TestClient] = []

    def start(stores: Stores, embedder: HashEmbedder | None = None, **fields: object) -> TestClient:
        def services(settings: Settings) -> Services:
            pool = VllmPool([FakeVllm("http://vllm.test").client()])
            return build_services(settings, embedder or HashEmbedder(), stores=stores, pool=pool)

        fields.setdefault("data_dir", data_dir)
        settings = Settings(api_keys=[CHAT], admin_keys=[ADMIN], **fields)  # type: ignore[arg-type]
        client = TestClient(create_app(settings, services))  # raises what reaches Starlette
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
