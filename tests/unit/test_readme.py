"""The README is a map that stays true: its settings table is generated, and every setting,
link and `tandem` command it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from tandem.cli import app
from tandem.settings_table import WRITE_COMMAND, env_names, readme_block, render_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 300

# `TANDEM_*` names read outside the Settings model, each where the code reads it.
OTHER_ENV_NAMES = {
    "TANDEM_EVAL_URL": "services/orchestrator/tandem/cli/evaluate.py",
    "TANDEM_EVAL_API_KEY": "services/orchestrator/tandem/cli/evaluate.py",
    "TANDEM_TEST_VLLM_URL": "tests/integration/conftest.py",
    "TANDEM_UPDATE_DOCS_SCREENSHOT": "tests/integration/test_widget_browser.py",
}

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
ENV_NAME = re.compile(r"\bTANDEM_[A-Z0-9_]*[A-Z0-9](?:__\*|_\*)?")


def _readme() -> str:
    return README.read_text()


def test_the_settings_table_is_generated_from_the_settings() -> None:
    assert readme_block(_readme()) == render_table(), (
        f"README.md's settings table is stale: run `{WRITE_COMMAND}`"
    )


def test_every_setting_is_in_the_readme() -> None:
    text = _readme()
    missing = sorted(name for name in env_names() if name not in text)
    assert not missing, f"settings missing from README.md (run `{WRITE_COMMAND}`): {missing}"


def test_every_tandem_name_in_the_readme_is_read_by_tandem() -> None:
    settings = env_names()
    unknown = []
    for name in sorted(set(ENV_NAME.findall(_readme()))):
        if name.endswith("*"):  # a group, e.g. TANDEM_ANSWERING__*
            known = any(s.startswith(name.rstrip("*")) for s in settings)
        else:
            known = name in settings or name in OTHER_ENV_NAMES
        if not known:
            unknown.append(name)
    assert not unknown, f"README.md names settings that do not exist: {unknown}"


def test_the_other_env_names_are_still_read_where_listed() -> None:
    for name, path in OTHER_ENV_NAMES.items():
        assert name in (ROOT / path).read_text(), f"{name} is no longer read in {path}"


def test_the_readme_is_a_map_not_a_notebook() -> None:
    lines = len(_readme().splitlines())
    assert lines <= MAX_LINES, (
        f"README.md has {lines} lines (at most {MAX_LINES}): figures and stories belong in "
        "docs/MEASUREMENTS.md, details in docs/"
    )


def test_every_relative_link_points_at_a_file() -> None:
    broken = []
    for target in LINK.findall(_readme()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # http(s), mailto, anchors
        path = target.split("#", 1)[0]
        if not (ROOT / path).exists():
            broken.append(target)
    assert not broken, f"README.md links to files that do not exist: {broken}"


def _command_lines(text: str) -> list[str]:
    """Every `tandem …` the README shows: lines of its code blocks, and inline code."""
    blocks = FENCE.findall(text)
    lines = [line for block in blocks for line in block.splitlines()]
    prose = FENCE.sub("", text)
    lines += CODE_SPAN.findall(prose)
    return [line.split("#", 1)[0].strip() for line in lines if line.startswith("tandem ")]


def _subcommands(command: object) -> dict[str, object] | None:
    """A group's sub-commands by name; None for a plain command (typer vendors click)."""
    commands = getattr(command, "commands", None)
    return dict(commands) if isinstance(commands, dict) else None


def _problem(root: object, words: list[str]) -> str | None:
    """None when `words` (sub-command names, then arguments) name a real command."""
    command, name = root, "tandem"
    for word in words:
        subcommands = _subcommands(command)
        if subcommands is None or word.startswith("<"):
            return None  # the rest are the command's arguments, or a placeholder
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            # a group that passes arguments to its default command (`tandem index PATH`)
            return None if name == "index" else f"{word!r} is not a command of {name!r}"
        if word not in subcommands:
            return f"no command {word!r} in {name!r}"
        command, name = subcommands[word], word
    return None


def test_every_tandem_command_in_the_readme_exists() -> None:
    root = typer.main.get_command(app)
    top = _subcommands(root) or {}
    problems = []
    for line in _command_lines(_readme()):
        first, *alternatives = [part.strip() for part in line.split(" | ")]
        words = [w for w in first.split()[1:] if w not in {"…", "..."}]
        # `tandem index status | rollback | changes`: alternatives to the group's sub-command
        stem = words[:1] if words and _subcommands(top.get(words[0])) is not None else []
        for candidate in [words, *[stem + alt.split() for alt in alternatives]]:
            if (problem := _problem(root, candidate)) is not None:
                problems.append(f"{line}: {problem}")
    assert not problems, "README.md shows tandem commands that do not exist:\n" + "\n".join(
        problems
    )


def test_the_command_check_catches_a_missing_command() -> None:
    root = typer.main.get_command(app)
    assert _problem(root, ["index", "status"]) is None
    assert _problem(root, ["index", "corpus/v4.2", "--release", "v4.2"]) is None
    assert _problem(root, ["serve"]) == "no command 'serve' in 'tandem'"
    assert _problem(root, ["adapters", "promote"]) == "no command 'promote' in 'adapters'"
    assert _problem(root, ["<command>", "--help"]) is None
