"""Score (query, passage) pairs with a cross-encoder: ms-marco-MiniLM-L-12-v2, int8 ONNX.

The model folder is made by `tandem model prepare` (`cross_encoder_prep`). ONNX Runtime is
the default because it scored 4 pairs of 256 tokens on 2 threads in p50 965 ms (483 ms of CPU)
against OpenVINO's 1,413 ms (733 ms of CPU), and 8 pairs in 1,904 vs 3,068 ms, taking turns on
a shared 2-core AMD EPYC VM at load ~8 (`.venv/bin/python bench/bench_cross_encoder.py
--runs 30`). The graph's activations are quantised per tensor across the whole batch, so a
pair's logit moves a little (~0.2) with the other pairs beside it; compare scores within one
call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from tandem.errors import BadInput
from tandem.llm.tokenizer_json import load_tokenizer_json
from tandem.rag.onnx_embedder import Runner, openvino_runners
from tandem.rag.sparse import tokenize

Runtime = Literal["onnxruntime", "openvino"]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # what the graph asks for


class PairScorer(Protocol):
    """Scores how well each passage answers a query; higher is better."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


def _onnxruntime_runner(path: Path, threads: int | None) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Explicit, never 0: ONNX Runtime pins its default pool's threads to cores, which on a
    # box shared with vLLM stalls whichever waits (tests/integration/test_reindex_backends.py
    # checks that no thread of the process is pinned); and no spinning between calls
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = tuple(i.name for i in session.get_inputs())
    if sorted(names) != sorted(INPUTS):
        raise BadInput(f"{path}: the cross-encoder takes {names}, not {INPUTS}")
    return lambda feed: session.run(None, feed)[0]


class CrossEncoder:
    """The real cross-encoder: one batch per call, each pair cut to `max_length` tokens."""

    def __init__(
        self,
        folder: Path,
        threads: int | None = None,
        max_length: int = 256,
        runtime: Runtime = "onnxruntime",
    ) -> None:
        if not (folder / "model.onnx").is_file():
            raise BadInput(f"no cross-encoder in {folder}: run `tandem model prepare`")
        self._tokenizer = load_tokenizer_json(folder / "tokenizer.json")
        pad_id = self._tokenizer.token_to_id("[PAD]")
        if pad_id is None:
            raise BadInput(f"{folder}/tokenizer.json has no [PAD] token")
        # longest_first trims the longer side first: a long passage is cut before the query
        self._tokenizer.enable_truncation(max_length, strategy="longest_first")
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        model = folder / "model.onnx"
        if runtime == "onnxruntime":
            self._run = _onnxruntime_runner(model, threads)
        else:
            (self._run,) = openvino_runners(model, threads or 0, [None])
        self.runtime = runtime
        self.max_length = max_length
        # a first run is slow, and one that feeds inputs the graph lacks fails here, not later
        self.score("probe", ["probe"])

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """The model's raw logit for each (query, passage) pair, in the passages' order."""
        if not passages:
            return []
        encodings = self._tokenizer.encode_batch([(query, passage) for passage in passages])
        columns = (
            [e.ids for e in encodings],
            [e.attention_mask for e in encodings],
            [e.type_ids for e in encodings],
        )
        feed = {
            name: np.array(rows, dtype=np.int64) for name, rows in zip(INPUTS, columns, strict=True)
        }
        logits = np.asarray(self._run(feed), dtype=np.float32)
        return [float(value) for value in logits.reshape(len(passages), -1)[:, 0]]


class FakeCrossEncoder:
    """A deterministic stand-in for tests: the share of the query's terms each passage has."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Term overlap in [0, 1] per passage (stemmed, no stopwords); records each call."""
        self.calls.append((query, list(passages)))
        asked = set(tokenize(query))
        return [len(asked & set(tokenize(p))) / max(1, len(asked)) for p in passages]
