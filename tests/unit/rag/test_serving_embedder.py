"""How many threads the serving process's embedder computes on."""

from __future__ import annotations

import pytest

from tandem.rag.embedder import serving_threads
from tandem.settings import Settings


def test_queries_embed_on_one_thread_by_default() -> None:
    assert serving_threads(Settings()) == 1


def test_the_thread_count_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_RETRIEVAL__EMBED_THREADS", "2")
    assert serving_threads(Settings()) == 2


def test_every_core_when_index_jobs_embed_in_the_serving_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANDEM_INDEX__EMBED_PROCESS", "false")
    assert serving_threads(Settings()) is None
