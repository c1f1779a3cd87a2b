"""Dense embeddings of all-MiniLM-L6-v2, computed in-process; `build_embedder` makes them.

`build_embedder` is the one way to build an embedder, for every caller (the server, the
index job's child process, `tandem index`, dataset builds, tests and benches): the backend
class (`SentenceTransformerEmbedder` on torch, `OnnxEmbedder` on ONNX Runtime or OpenVINO)
and its threads and query shapes follow from the settings and the use.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from tandem.rag.embed_model import model_label, packaged_model_path
from tandem.settings import EmbedBackend, Settings

EMBED_BACKENDS: tuple[str, ...] = get_args(EmbedBackend)


class Embedder(Protocol):
    """Turns text into normalised dense vectors."""

    dim: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """The real embedder on torch (the other backends are `OnnxEmbedder`; see `build_embedder`)."""

    backend = "torch"

    def __init__(
        self, model_path: Path | None = None, batch_size: int = 32, threads: int | None = None
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads or max(1, torch.get_num_threads()))
        model = str(model_path or packaged_model_path())
        self._model: Any = SentenceTransformer(model, device="cpu")
        self._tokenizer: Any = self._model.tokenizer
        self.batch_size = batch_size
        self.dim = len(self.embed_query("probe"))
        self.vector_space = model_label(Path(model))  # the fp32 backends share it

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [row.tolist() for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=True, truncation=False))


EmbedderUse = Literal["documents", "queries", "index-job"]


def build_embedder(settings: Settings, use: EmbedderUse = "documents") -> Embedder:
    """The embedder: the packaged model on TANDEM_RETRIEVAL__EMBED_BACKEND, set up for `use`.

    "documents" (`tandem index`, dataset builds, benches): every core, any batch and length.
    "queries" (a serving process): `serving_threads`, and on openvino queries of up to
    TANDEM_RETRIEVAL__QUERY_TOKENS tokens on models compiled for those shapes, their
    weights as TANDEM_RETRIEVAL__QUERY_WEIGHTS says. "index-job" (the admin API's index
    job, in its child process): TANDEM_INDEX__EMBED_THREADS threads. ONNX exports are
    cached under TANDEM_MODELS_DIR.
    """
    retrieval = settings.retrieval
    threads = None  # documents: every core
    if use == "queries":
        threads = serving_threads(settings)
    elif use == "index-job":
        threads = settings.index.embed_threads
    model = packaged_model_path()
    if retrieval.embed_backend == "torch":
        return SentenceTransformerEmbedder(model, retrieval.embed_batch_size, threads)
    from tandem.rag.onnx_embedder import OnnxEmbedder

    static = use == "queries" and retrieval.embed_backend == "openvino"
    return OnnxEmbedder(
        model,
        settings.models_dir,
        retrieval.embed_backend,
        retrieval.embed_batch_size,
        threads,
        retrieval.query_tokens if static else None,
        retrieval.query_weights if static else "fp32",
    )


def serving_threads(settings: Settings) -> int | None:
    """A serving process embeds its queries on TANDEM_RETRIEVAL__EMBED_THREADS, and on every
    core (None) when index jobs embed in it too (TANDEM_INDEX__EMBED_PROCESS=false)."""
    return settings.retrieval.embed_threads if settings.index.embed_process else None


def describe(embedder: Embedder) -> str:
    """How an embedder runs, for the start-up log: its backend, and where queries have static
    shapes their lengths and weights ("openvino; queries: 16/24/32-token shapes, int8
    weights")."""
    text = str(getattr(embedder, "backend", type(embedder).__name__))
    if shapes := getattr(embedder, "query_shapes", []):
        lengths = "/".join(str(length) for length in shapes)
        weights = getattr(embedder, "query_weights", "fp32")
        text += f"; queries: {lengths}-token shape{'s' if len(shapes) > 1 else ''}, {weights}"
        text += " weights"
    return text


def vector_space(embedder: Embedder) -> str:
    """Which vectors an embedder makes; stored vectors are reused only within one space."""
    return str(getattr(embedder, "vector_space", type(embedder).__name__))


class HashEmbedder:
    """Deterministic fake for unit tests: bag-of-words hashed into `dim` buckets."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.vector_space = f"hash-{dim}"
        self.calls: list[int] = []

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in text.lower().split():
            bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim
            vector[bucket] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(text.split())
