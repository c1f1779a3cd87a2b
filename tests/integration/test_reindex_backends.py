"""The faster embed backends give the torch vectors, from an ONNX file exported locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tandem.rag.embedder import Embedder, make_embedder

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TEXTS = [
    "PAPERLESS_DBENGINE\nSpecifies the database engine to use.",
    "How do I add Turkish OCR to the Docker image?",
    "Rate limits > Requests per token\n" + "Each token may send 120 requests per minute. " * 20,
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize(
    ("backend", "min_cosine"), [("onnx", 0.9999), ("openvino", 0.999), ("onnx-int8", 0.85)]
)
def test_backend_matches_torch(
    backend: str, min_cosine: float, cache: Path, embedder: Embedder
) -> None:
    fast = make_embedder(backend, batch_size=2, cache_dir=cache)
    expected = np.array(embedder.embed_documents(TEXTS))
    got = np.array(fast.embed_documents(TEXTS))

    assert fast.dim == embedder.dim
    assert (got * expected).sum(axis=1).min() >= min_cosine
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert np.dot(fast.embed_query(TEXTS[1]), expected[1]) >= min_cosine
    assert fast.count_tokens(TEXTS[2]) == embedder.count_tokens(TEXTS[2])


def test_the_export_is_made_once_and_cached(cache: Path) -> None:
    make_embedder("onnx", cache_dir=cache)
    exported = sorted(cache.glob("onnx/*/model.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    make_embedder("onnx", cache_dir=cache)
    assert exported[0].stat().st_mtime_ns == stamp
    assert not list(cache.glob("onnx/*/*.tmp"))
