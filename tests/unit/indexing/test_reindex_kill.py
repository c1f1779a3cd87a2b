"""SIGKILL an edge build (hash embedder: no model, seconds) in each stage; the integration
test does the same with the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.kill_build import check_killed_build, serving_v41

from tandem.rag.embedder import HashEmbedder


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return serving_v41(tmp_path_factory.mktemp("v41"), HashEmbedder())


@pytest.mark.parametrize("stage", ["embed", "store", "verify"])
def test_a_killed_edge_build_leaves_the_old_release_serving_and_converges(
    stage: str, serving: Path, tmp_path: Path
) -> None:
    check_killed_build(stage, serving, tmp_path, HashEmbedder(), "hash")
