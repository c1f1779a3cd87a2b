"""`tandem index …` on an embedded store: the sub-commands, and `index PATH` meaning build."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli import app
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import HashEmbedder
from tandem.settings import Settings, get_settings
from tandem.stores.deployment import open_stores

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TANDEM_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def two_releases(data_dir: Path, tmp_path: Path) -> None:
    store = open_stores(Settings(data_dir=data_dir), HashEmbedder().dim)
    for release in ("v1", "v2"):
        folder = tmp_path / release
        folder.mkdir()
        (folder / "page.md").write_text(f"# Page\n\nRelease {release} text.\n")
        index_release(store, HashEmbedder(), folder, release, "docs")
    store.close()


def test_status_rollback_and_changes(data_dir: Path, tmp_path: Path) -> None:
    two_releases(data_dir, tmp_path)

    status = json.loads(runner.invoke(app, ["index", "status"]).stdout)
    assert status["serving"]["release"] == "v2"
    changes = json.loads(runner.invoke(app, ["index", "changes"]).stdout)
    assert changes["pages_changed"][0]["headings_changed"] == ["Page"]

    back = runner.invoke(app, ["index", "rollback"])
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["serving"]["release"] == "v1"
    again = runner.invoke(app, ["index", "rollback"])
    assert again.exit_code == 2
    assert "nothing to roll back to" in again.output
    forward = runner.invoke(app, ["index", "rollback", "--release", "v2"])
    assert json.loads(forward.stdout)["serving"]["release"] == "v2"


def test_index_path_is_the_build_command(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", str(tmp_path / "missing"), "--release", "v1"])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
    assert "index build" in runner.invoke(app, ["index", "build", "--help"]).output
