"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.api.stack import Serve, serving


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """`serve(stores, embedder=None, **settings)`: a started app with chat and admin keys."""
    yield from serving(tmp_path / "data")
