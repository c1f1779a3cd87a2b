"""The indexing tests' store: embedded edge + SQLite state in a temp folder, hash-embedder sized."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.rag.embedder import HashEmbedder
from tandem.settings import Settings
from tandem.stores.deployment import Stores, open_stores


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Stores]:
    stores = open_stores(Settings(data_dir=tmp_path / "data"), HashEmbedder().dim)
    yield stores
    stores.close()
