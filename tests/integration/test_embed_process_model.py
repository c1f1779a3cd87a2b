"""The index job's embedding process with the real MiniLM on the configured backend: the
serving embedder's vectors, computed on one core at low priority."""

from __future__ import annotations

import os
import time

import numpy as np
import psutil
import pytest

from tandem.indexing.embed_process import EmbedProcess, index_embedder_factory
from tandem.rag.embedder import Embedder
from tandem.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TEXTS = [
    f"Section {i}: PAPERLESS_DBENGINE selects the database engine; " + "consume and OCR. " * 12
    for i in range(96)
]


def test_the_child_embeds_the_serving_vectors_on_one_core(embedder: Embedder) -> None:
    settings = Settings()
    factory = index_embedder_factory(settings)
    assert factory is not None
    process = EmbedProcess(factory, embedder, settings.index.embed_nice)
    try:
        process.vectors(TEXTS[:2])  # loaded and warm
        assert process.pid is not None
        child = psutil.Process(process.pid)
        cpu_before, wall_before = sum(child.cpu_times()[:2]), time.perf_counter()
        stored = process.vectors(TEXTS)
        cpu = sum(child.cpu_times()[:2]) - cpu_before
        wall = time.perf_counter() - wall_before
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == settings.index.embed_nice
    finally:
        process.close()
    # one compute thread: the child never used more than one core's worth of CPU time
    assert cpu <= 1.15 * wall, (cpu, wall)
    got = np.array([s.dense for s in stored])
    expected = np.array(embedder.embed_documents(TEXTS))
    assert (got * expected).sum(axis=1).min() >= 0.999
