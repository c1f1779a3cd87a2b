"""The CLI wiring: each command reaches its implementation (imports live inside commands)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tandem.cli import app

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "index", "adapters", "dataset", "train", "eval", "model"):
        assert command in result.output


def test_dataset_validate_reports_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    result = runner.invoke(app, ["dataset", "validate", str(broken)])
    assert not isinstance(result.exception, ImportError), result.exception
    assert result.exit_code == 1
    assert "error: not valid JSON" in " ".join(result.output.split())


def test_train_refuses_a_recipe_with_unknown_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("no_such_key: 1\n")
    result = runner.invoke(app, ["train", str(recipe)])
    assert not isinstance(result.exception, ImportError), result.exception
    assert result.exit_code == 2 and "error:" in result.output
