"""The README's settings table, generated from `tandem.settings.Settings`.

    python -m tandem.settings_table                    # print the table
    python -m tandem.settings_table --write README.md  # rewrite the block between the markers
    python -m tandem.settings_table --check README.md  # exit 1 when the block is stale

One row per setting: its environment name (prefix and nested delimiter read from the model's
config), its default as a user would write it, and the field's description (the attribute
docstring in settings.py, settings_groups.py or settings_policy.py). Nested groups get a
section row each.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from tandem.settings import PROJECT_ROOT, Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
WRITE_COMMAND = ".venv/bin/python -m tandem.settings_table --write README.md"

# Defaults computed from the machine: shown as the rule, so the table reads the same anywhere.
MACHINE_DEFAULTS = {
    "TANDEM_VLLM__DTYPE": "`bfloat16` with AVX-512 BF16 or AMX, else `float32`",
}


@dataclass(frozen=True)
class SettingRow:
    """One setting as the README lists it."""

    group: str  # the section's environment prefix, e.g. `TANDEM_VLLM__*`
    section: str  # what the section is about
    env: tuple[str, ...]  # every environment name that sets it; the first is the usual one
    default: str
    description: str


def _aliases(field: FieldInfo) -> list[str]:
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def _env_names(name: str, field: FieldInfo, prefix: str, top_level: bool) -> tuple[str, ...]:
    """pydantic-settings: a top-level alias replaces the prefixed name; nested, it is the key."""
    aliases = _aliases(field)
    if top_level and aliases:
        return tuple(alias.upper() for alias in aliases)
    return tuple(f"{prefix}{key}".upper() for key in aliases or [name])


def _portable(text: str) -> str:
    """Paths under the checkout or the home folder, written the same on every machine."""
    root, home = str(PROJECT_ROOT), str(Path.home())
    if text == root or text.startswith(root + "/"):
        return "<checkout>" + text[len(root) :]
    if text == home or text.startswith(home + "/"):
        return "~" + text[len(home) :]
    return text


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_value(item) for item in value)
    return _portable(str(value))


def _default(env: str, field: FieldInfo) -> str:
    if env in MACHINE_DEFAULTS:
        return MACHINE_DEFAULTS[env]
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None or value == [] or value == ():
        return "unset"
    return f"`{_value(value)}`"


def _description(field: FieldInfo) -> str:
    text = " ".join((field.description or "").split())
    return text.replace("|", "\\|")


def _summary(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _walk(
    model: type[BaseModel], prefix: str, delimiter: str, section: str, top_level: bool = False
) -> Iterator[SettingRow]:
    """The model's own settings, then each nested group's (a section of its own)."""
    groups: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            key = (_aliases(field) or [name])[0]
            groups.append((f"{prefix}{key}{delimiter}".upper(), field.annotation))
            continue
        env = _env_names(name, field, prefix, top_level)
        default = _default(env[0], field)
        yield SettingRow(f"{prefix}*", section, env, default, _description(field))
    for group_prefix, group in groups:
        yield from _walk(group, group_prefix, delimiter, _summary(group))


def setting_rows(settings: type[Settings] = Settings) -> list[SettingRow]:
    """Every setting, the top-level ones first, then each nested group in field order."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    delimiter = str(settings.model_config.get("env_nested_delimiter") or "__")
    top = "The service: address, folders, keys, limits."
    return list(_walk(settings, prefix, delimiter, top, top_level=True))


def env_names(settings: type[Settings] = Settings) -> set[str]:
    """Every environment name the settings read."""
    return {name for row in setting_rows(settings) for name in row.env}


def render_table(settings: type[Settings] = Settings) -> str:
    """The Markdown table: a bold row opens each section."""
    lines = ["| setting | default | what it does |", "| --- | --- | --- |"]
    section = None
    for row in setting_rows(settings):
        if row.section != section:
            section = row.section
            lines.append(f"| **`{row.group}`** | | *{section}* |")
        names = " / ".join(f"`{name}`" for name in row.env)
        lines.append(f"| {names} | {row.default} | {row.description} |")
    return "\n".join(lines) + "\n"


def _bounds(text: str) -> tuple[int, int]:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {START} … {END} block")
    return start + len(START), end


def readme_block(text: str) -> str:
    """What stands between the markers, without the blank lines around it."""
    start, end = _bounds(text)
    return text[start:end].strip("\n") + "\n"


def replace_block(text: str, table: str) -> str:
    """`text` with the block between the markers replaced by `table`."""
    start, end = _bounds(text)
    return f"{text[:start]}\n{table.strip(chr(10))}\n{text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="README", help="rewrite its block")
    action.add_argument("--check", type=Path, metavar="README", help="exit 1 when stale")
    args = parser.parse_args(argv)
    table = render_table()
    if args.write is not None:
        text = args.write.read_text()
        new = replace_block(text, table)
        if new != text:
            args.write.write_text(new)
        print(f"{args.write}: settings table {'rewritten' if new != text else 'up to date'}")
        return 0
    if args.check is not None:
        if readme_block(args.check.read_text()) != table:
            print(f"{args.check}: the settings table is stale; run {WRITE_COMMAND}")
            return 1
        return 0
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
