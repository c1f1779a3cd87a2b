"""Opens the document store and the state store that a deployment uses, as a pair.

Embedded (the default): edge shards under `data/index/` and SQLite at
`data/state.sqlite3`. With `TANDEM_QDRANT__URL`: both live in the Qdrant server or
cluster, so every orchestrator replica shares them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandem.errors import DependencyDown
from tandem.settings import Settings
from tandem.stores.docs import DocStore
from tandem.stores.state import StateStore


@dataclass
class Stores:
    docs: DocStore
    state: StateStore

    def close(self) -> None:
        self.docs.close()


def open_stores(settings: Settings, dim: int) -> Stores:
    """The server's stores when TANDEM_QDRANT__URL is set, else the embedded ones."""
    if settings.qdrant.url:
        from qdrant_client import QdrantClient

        from tandem.stores.qdrant_docs import QdrantDocStore
        from tandem.stores.qdrant_state import QdrantStateStore

        client = QdrantClient(url=settings.qdrant.url, api_key=settings.qdrant.api_key, timeout=30)
        return Stores(QdrantDocStore(client, dim), QdrantStateStore(client))
    from tandem.stores.edge_docs import EdgeDocStore
    from tandem.stores.sqlite import StateDatabase
    from tandem.stores.sqlite_state import SqliteStateStore

    state = SqliteStateStore(StateDatabase(settings.state_path))
    _take_over_old_layout(settings, state)
    return Stores(EdgeDocStore(settings.index_path, dim), state)


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
