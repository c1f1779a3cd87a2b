"""Kill a real re-index of the embedded edge store (real MiniLM) with SIGKILL at each stage:
the old release serves, the leftover shard goes, and the same re-index again converges."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.kill_build import check_killed_build, serving_v41

from tandem.rag.embedder import Embedder

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    return serving_v41(tmp_path_factory.mktemp("v41"), embedder)


@pytest.mark.parametrize("stage", ["embed", "store", "verify"])
def test_killed_reindex_leaves_old_release_serving_and_converges(
    stage: str, serving: Path, tmp_path: Path, embedder: Embedder
) -> None:
    check_killed_build(stage, serving, tmp_path, embedder, "minilm")
