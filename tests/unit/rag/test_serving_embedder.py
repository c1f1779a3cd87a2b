"""How many threads the serving process's embedder computes on, and on which weights."""

from __future__ import annotations

import ast
import pickle
from functools import partial
from pathlib import Path

import pytest
from pydantic import ValidationError

import tandem
from tandem.indexing.embed_process import index_embedder_factory
from tandem.rag.embedder import HashEmbedder, build_embedder, describe, serving_threads
from tandem.rag.onnx_embedder import query_weights_for
from tandem.settings import RetrievalSettings, Settings


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


def test_auto_query_weights_are_fp32_only_where_the_cpu_has_amx() -> None:
    assert query_weights_for("auto", {"avx512f", "avx512_vnni"}) == "int8"  # f32 compute
    assert query_weights_for("auto", {"avx512f", "avx512_bf16"}) == "int8"  # bf16, no AMX
    assert query_weights_for("auto", {"avx512_bf16", "amx_tile", "amx_bf16"}) == "fp32"
    assert query_weights_for("auto", set()) == "int8"  # flags unknown
    for chosen in ("fp32", "int8"):
        assert query_weights_for(chosen, {"amx_bf16"}) == chosen
        assert query_weights_for(chosen, set()) == chosen


def test_query_weights_are_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().retrieval.query_weights == "auto"
    monkeypatch.setenv("TANDEM_RETRIEVAL__QUERY_WEIGHTS", "fp32")
    assert Settings().retrieval.query_weights == "fp32"
    with pytest.raises(ValidationError, match="query_weights"):
        RetrievalSettings(query_weights="int4")  # type: ignore[arg-type]


def test_the_start_up_log_says_how_queries_are_embedded() -> None:
    assert describe(HashEmbedder()) == "HashEmbedder"  # no backend, no static query shape


def test_query_shapes_are_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().retrieval.query_tokens == [16, 24, 32]
    assert RetrievalSettings(query_tokens=24).query_tokens == [24]  # one shape, as before
    for value, shapes in (("32", [32]), ("24, 16,16", [16, 24]), ("0", []), ("", [])):
        monkeypatch.setenv("TANDEM_RETRIEVAL__QUERY_TOKENS", value)
        assert Settings().retrieval.query_tokens == shapes
    for bad in ("300", "16,x", "-8"):
        with pytest.raises(ValidationError, match="query_tokens"):
            RetrievalSettings(query_tokens=bad)  # type: ignore[arg-type]


def test_every_embedder_is_built_by_build_embedder() -> None:
    """One way to build one: no module but `rag/embedder.py` constructs a backend class."""
    package = Path(tandem.__file__).parent
    backends = {"SentenceTransformerEmbedder", "OnnxEmbedder"}
    elsewhere = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path != package / "rag" / "embedder.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in backends
    ]
    assert elsewhere == []


def test_the_index_job_child_builds_its_embedder_the_same_way() -> None:
    factory = index_embedder_factory(Settings())
    assert isinstance(factory, partial) and factory.func is build_embedder
    assert factory.args[1] == "index-job"
    assert pickle.loads(pickle.dumps(factory)).args[1] == "index-job"  # it crosses to the child
