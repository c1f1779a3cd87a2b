"""All configuration, read from `TANDEM_*` environment variables (nested groups use `__`).

`Settings` and its top-level fields live here; the nested groups live in `settings_groups`
(the model stack) and `settings_policy` (what Tandem decides and keeps), re-exported here so
`from tandem.settings import VllmSettings` keeps working."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.settings_groups import (
    BASE_MODEL_ID,
    PROJECT_ROOT,
    CommaList,
    EmbedBackend,
    GenerationSettings,
    IndexSettings,
    LimitSettings,
    LoraKernel,
    ModelSettings,
    QdrantSettings,
    QueryWeights,
    RetrievalSettings,
    SettingsGroup,
    TokenLengths,
    VllmDtype,
    VllmSettings,
    _split_commas,
    cpu_dtype,
    cpu_flags,
)
from tandem.settings_policy import (
    AdapterSettings,
    AnsweringSettings,
    FeedbackSettings,
    HandoffSettings,
    ReleaseSettings,
    WidgetSettings,
)

__all__ = [
    "BASE_MODEL_ID",
    "LOOPBACK",
    "PROJECT_ROOT",
    "AdapterSettings",
    "AnsweringSettings",
    "CommaList",
    "EmbedBackend",
    "FeedbackSettings",
    "GenerationSettings",
    "HandoffSettings",
    "IndexSettings",
    "LimitSettings",
    "LoraKernel",
    "ModelSettings",
    "QdrantSettings",
    "QueryWeights",
    "ReleaseSettings",
    "RetrievalSettings",
    "Settings",
    "SettingsGroup",
    "TokenLengths",
    "VllmDtype",
    "VllmSettings",
    "WidgetSettings",
    "cpu_dtype",
    "cpu_flags",
    "get_settings",
    "newest_release",
    "release_order",
]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
