"""`tandem adapters register` on the adapters folder (the other commands call the admin API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import write_adapter
from typer.testing import CliRunner

from tandem.cli import app
from tandem.settings import Settings, get_settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("TANDEM_ADAPTERS_DIR", str(settings.adapters_dir))
    monkeypatch.setenv("TANDEM_MODELS_DIR", str(settings.models_dir))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_register_adds_the_next_version(cli_env: Settings, tmp_path: Path) -> None:
    source = write_adapter(tmp_path / "trained")
    result = CliRunner().invoke(app, ["adapters", "register", str(source), "--slot", "support"])
    assert result.exit_code == 0, result.output
    assert "registered support@v4" in result.output
    assert (cli_env.adapters_dir / "support" / "v4" / "adapter_model.safetensors").is_file()


def test_register_refuses_pickles_with_exit_code_2(cli_env: Settings, tmp_path: Path) -> None:
    source = write_adapter(tmp_path / "trained")
    (source / "adapter_model.safetensors").rename(source / "adapter_model.bin")
    result = CliRunner().invoke(app, ["adapters", "register", str(source)])
    assert result.exit_code == 2
    assert "pickle weights" in result.output
    assert not (cli_env.adapters_dir / "support" / "v4").exists()


def test_activate_says_when_tandem_is_unreachable(cli_env: Settings) -> None:
    args = ["adapters", "activate", "v2", "--url", "http://127.0.0.1:9", "--key", "k"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 6 and "cannot reach Tandem" in result.output
