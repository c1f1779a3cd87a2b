"""docs/ARCHITECTURE.md's package map names every module of the package (a map, checked)."""

from __future__ import annotations

import re
from pathlib import Path

import tandem

PACKAGE = Path(tandem.__file__).parent
DOC = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


def package_map() -> dict[str, str]:
    """First cell (`pkg/` or `module.py`, ...) -> the whole row, from the package map table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Package map", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            for name in re.findall(r"`([^`]+)`", first):
                rows[name] = line
    return rows


def test_every_module_is_on_the_map() -> None:
    rows = package_map()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if path.name == "__main__.py" or "__pycache__" in relative.parts:
            continue
        if len(relative.parts) == 1:
            if path.name != "__init__.py" and path.name not in rows:
                missing.append(str(relative))
            continue
        package = relative.parts[0] + "/"
        row = rows.get(package, "")
        stem = "/".join(relative.with_suffix("").parts[1:]).removesuffix("__init__")
        if stem.startswith("routes/"):
            stem = stem.removeprefix("routes/")
        if not row or (stem and f"`{stem}`" not in row and f"`{stem}.py`" not in row):
            missing.append(str(relative))
    assert not missing, f"add these modules to docs/ARCHITECTURE.md's package map: {missing}"


def test_the_map_names_no_module_that_does_not_exist() -> None:
    for name in package_map():
        if name.endswith("/"):
            assert (PACKAGE / name).is_dir(), f"the map names a package that is gone: {name}"
        elif name.endswith(".py"):
            assert (PACKAGE / name).is_file(), f"the map names a module that is gone: {name}"
