"""All configuration, read from `TANDEM_*` environment variables (nested groups use `__`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class VllmSettings(BaseModel):
    """How Tandem reaches (or starts) the vLLM server(s)."""

    url: str | None = None  # use a running vLLM instead of starting one
    urls: CommaList = Field(default_factory=list)  # several replicas, balanced
    host: str = "127.0.0.1"
    port: int = 8001
    max_lora_rank: int = 16
    max_loras: int = 4
    max_model_len: int = 4096
    kv_cache_gb: int = 1
    startup_timeout_s: float = 300.0
    request_timeout_s: float = 120.0
    api_key: str | None = None

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


class QdrantSettings(BaseModel):
    """Embedded Qdrant on disk by default; a server or cluster when `url` is set."""

    url: str | None = None
    api_key: str | None = None
    alias: str = "docs"
    keep_releases: int = 3


class ModelSettings(BaseModel):
    """The served base model."""

    name: str = BASE_MODEL_ID
    path: Path | None = None  # defaults to <models_dir>/<last part of name>


EmbedBackend = Literal["torch", "onnx", "onnx-int8", "openvino"]


class RetrievalSettings(BaseModel):
    top_k: int = 4
    max_top_k: int = 10
    prefetch: int = 24
    embed_batch_size: int = 32
    # TANDEM_RETRIEVAL__EMBED_BACKEND: openvino embeds ~4x faster than torch on CPU with the
    # same vectors (bench/bench_index.py); onnx-int8 is faster still but loses hit@4
    embed_backend: EmbedBackend = "openvino"
    # The relevance gate (tandem/grounding.py): below any threshold, on more unseen terms than
    # allowed, or on a name the release never mentions, Tandem answers with the house fallback
    # sentence without calling vLLM. Values chosen on the calibration split by
    # bench/bench_grounding.py (MiniLM).
    gate: bool = True
    min_similarity: float = 0.3  # best dense cosine of a retrieved block
    min_term_overlap: float = 0.2  # share of the question's content terms in the blocks
    min_coverage: float = 0.35  # the same share with each term weighted by its IDF in the release
    max_unseen_terms: int | None = 1  # content terms the release never uses ("dark mode")
    decline_unknown_names: bool = True  # a name in the question ("Jira") no block mentions


class GenerationSettings(BaseModel):
    max_tokens: int = 256  # the house format caps answers at ~180 words
    temperature: float = 0.2
    top_p: float = 0.9
    repetition_penalty: float = 1.1


class AdapterSettings(BaseModel):
    """The adapter lifecycle: background check, swap lease, probe, unloading retired versions."""

    check_interval_s: float = 10.0  # how often replicas are checked for the serving adapters
    unload_grace_s: float = 15.0  # a retired version stays loaded at least this long
    lease_ttl_s: float = 300.0  # a swap lease held by a crashed orchestrator expires after this
    probe_max_tokens: int = 2  # the probe is a real generation, kept short


class Settings(BaseSettings):
    """The one settings object; build it with `get_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="TANDEM_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    models_dir: Path = Path.home() / ".cache" / "tandem" / "models"
    adapters_dir: Path = PROJECT_ROOT / "adapters"
    corpus: Path | None = None
    corpus_release: str | None = None
    index_roots: CommaList = Field(default_factory=lambda: [str(PROJECT_ROOT / "corpus")])
    api_keys: CommaList = Field(default_factory=list)
    admin_keys: CommaList = Field(default_factory=list)
    default_slot: str = "support"
    rate_limit_per_minute: int = 120
    max_request_bytes: int = 64_000
    max_messages: int = 40

    vllm: VllmSettings = Field(default_factory=VllmSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    adapter: AdapterSettings = Field(default_factory=AdapterSettings)

    _split = field_validator("index_roots", "api_keys", "admin_keys", mode="before")(_split_commas)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.open_access and self.host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(
                "TANDEM_API_KEYS and TANDEM_ADMIN_KEYS are both unset: Tandem only runs open "
                f"on 127.0.0.1, not on {self.host}. Set keys to listen on other addresses."
            )
        if set(self.api_keys) & set(self.admin_keys):
            raise ValueError("a key may not be both a chat key and an admin key")
        if not self.adapters_dir.is_dir():
            raise ValueError(
                f"the adapters folder {self.adapters_dir} does not exist. Set "
                "TANDEM_ADAPTERS_DIR to the folder holding <slot>/vN/ versions (an installed, "
                "non-editable package has no adapters/ beside it; the image mounts /adapters)."
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
        return self.data_dir / "qdrant"

    @property
    def corpus_path(self) -> Path:
        """The docs folder `up` indexes when the index is empty: the latest sample release."""
        if self.corpus is not None:
            return self.corpus
        root = PROJECT_ROOT / "corpus"
        releases = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not releases:
            raise ValueError(f"no release folders in {root}; set TANDEM_CORPUS")
        return releases[-1]

    @property
    def corpus_release_name(self) -> str:
        return self.corpus_release or self.corpus_path.name


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
