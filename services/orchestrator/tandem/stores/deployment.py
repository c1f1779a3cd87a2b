"""Opens every store a deployment uses: the one place that chooses embedded or server.

Embedded (the default): edge shards under `data/index/`, and SQLite at `data/state.sqlite3`
for the shared state, the answer log with its feedback and reviews, and the handoffs. With
`TANDEM_QDRANT__URL` all of them live in the Qdrant server or cluster, so every orchestrator
replica reads what any other wrote, the replicas count requests against one rate limit, and
a pod's data volume holds caches only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from tandem.errors import DependencyDown
from tandem.settings import Settings
from tandem.stores.docs import DocStore
from tandem.stores.feedback import FeedbackLog, InMemoryFeedbackLog
from tandem.stores.handoffs import HandoffStore, InMemoryHandoffStore
from tandem.stores.rate_windows import HitCounter
from tandem.stores.state import StateStore

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from tandem.stores.sqlite import StateDatabase


@dataclass
class Stores:
    """The doc store, the shared state and the shared records of one deployment."""

    docs: DocStore
    state: StateStore
    # unit tests build Stores from a doc and a state store: their records live in memory
    answers: FeedbackLog = field(default_factory=InMemoryFeedbackLog)
    handoffs: HandoffStore = field(default_factory=InMemoryHandoffStore)
    hits: HitCounter | None = None  # the replicas' shared request counts; None: per process
    closes_client: bool = True  # False: the Qdrant client is the caller's and stays open

    def close(self) -> None:
        if self.closes_client:
            self.docs.close()


class Records(NamedTuple):
    """The answer log (feedback, reviews) and the handoffs, without the doc store."""

    answers: FeedbackLog
    handoffs: HandoffStore


def open_stores(settings: Settings, dim: int) -> Stores:
    """The server's stores when TANDEM_QDRANT__URL is set, else the embedded ones."""
    if settings.qdrant.url:
        return qdrant_stores(_client(settings), settings, dim)
    from tandem.stores.edge_docs import EdgeDocStore
    from tandem.stores.sqlite import StateDatabase
    from tandem.stores.sqlite_state import SqliteStateStore

    database = StateDatabase(settings.state_path)
    state = SqliteStateStore(database)
    _take_over_old_layout(settings, state)
    docs = EdgeDocStore(settings.index_path, dim)
    return Stores(docs, state, *_sqlite_records(database, settings))


def qdrant_stores(
    client: QdrantClient, settings: Settings, dim: int, *, shared_client: bool = False
) -> Stores:
    """Every store in the Qdrant behind `client`: a server, or qdrant-client's local mode
    standing in for one. `shared_client`: the caller closes the client, not `Stores.close`."""
    from tandem.stores.qdrant_docs import QdrantDocStore
    from tandem.stores.qdrant_records import QdrantHitCounter
    from tandem.stores.qdrant_state import QdrantStateStore

    records = _qdrant_records(client, settings)
    return Stores(
        QdrantDocStore(client, dim),
        QdrantStateStore(client),
        *records,
        hits=QdrantHitCounter(client),
        closes_client=not shared_client,
    )


def open_records(settings: Settings) -> Records:
    """The answer log and the handoffs where `open_stores` keeps them, for commands that run
    beside a server (the embedded doc store admits one process; these records do not)."""
    if settings.qdrant.url:
        return _qdrant_records(_client(settings), settings)
    from tandem.stores.sqlite import StateDatabase

    return _sqlite_records(StateDatabase(settings.state_path), settings)


def _client(settings: Settings) -> QdrantClient:
    from qdrant_client import QdrantClient

    return QdrantClient(url=settings.qdrant.url, api_key=settings.qdrant.api_key, timeout=30)


def _qdrant_records(client: QdrantClient, settings: Settings) -> Records:
    from tandem.stores.qdrant_records import QdrantFeedbackLog, QdrantHandoffStore

    return Records(
        QdrantFeedbackLog(client, settings.feedback.retention_days),
        QdrantHandoffStore(client, settings.handoff_retention_days),
    )


def _sqlite_records(database: StateDatabase, settings: Settings) -> Records:
    from tandem.stores.feedback import SqliteFeedbackLog
    from tandem.stores.handoffs import SqliteHandoffStore

    return Records(
        SqliteFeedbackLog(database, settings.feedback.retention_days),
        SqliteHandoffStore(database, settings.handoff_retention_days),
    )


def _take_over_old_layout(settings: Settings, state: StateStore) -> None:
    """A data dir of the old embedded layout is migrated, or refused: never ignored."""
    from tandem.stores.legacy_layout import is_old_layout, migrate_old_layout

    old = settings.qdrant_path
    if not is_old_layout(old):
        return
    if settings.index_path.exists():
        raise DependencyDown(
            f"{old} holds an index in the old embedded layout (qdrant-client local mode) and "
            f"{settings.index_path} one in the current layout; nothing was changed. Move "
            f"{old} aside (e.g. `mv {old} {old}.old`) to serve the current one, or move "
            f"{settings.index_path} aside to migrate the old one on the next start."
        )
    migrate_old_layout(old, settings.index_path, state)
