"""load_release: which files become pages, and the errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.errors import BadInput
from tandem.indexing.loader import load_release


def _write(root: Path, relative: str, text: str = "# Page\n") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_loads_markdown_recursively_sorted_with_posix_paths(tmp_path: Path) -> None:
    _write(tmp_path, "usage.md", "# Usage\nhello")
    _write(tmp_path, "api/v2/auth.md")
    _write(tmp_path, "Index.md")
    _write(tmp_path, "api/intro.md")

    pages = load_release(tmp_path)

    assert [p.file for p in pages] == ["Index.md", "api/intro.md", "api/v2/auth.md", "usage.md"]
    assert pages[-1].text == "# Usage\nhello"


def test_skips_hidden_overrides_assets_and_other_files(tmp_path: Path) -> None:
    _write(tmp_path, "setup.md")
    for skipped in (
        ".hidden.md",
        ".git/notes.md",
        "overrides/main.md",
        "assets/readme.md",
        "guide/assets/inner.md",
        "notes.txt",
        "page.markdown",
    ):
        _write(tmp_path, skipped)

    assert [p.file for p in load_release(tmp_path)] == ["setup.md"]


def test_strips_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "bom.md").write_bytes("\ufeff---\ntitle: X\n---\n# X\n".encode())

    assert load_release(tmp_path)[0].text.startswith("---")


def test_missing_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_release(tmp_path / "nope")


def test_file_instead_of_folder_is_bad_input(tmp_path: Path) -> None:
    _write(tmp_path, "page.md")

    with pytest.raises(BadInput, match="is a file"):
        load_release(tmp_path / "page.md")


def test_folder_without_markdown_is_bad_input(tmp_path: Path) -> None:
    _write(tmp_path, "overrides/main.md")
    _write(tmp_path, "readme.txt")

    with pytest.raises(BadInput, match="no Markdown pages"):
        load_release(tmp_path)


def test_non_utf8_page_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "latin.md").write_bytes("# Caf\xe9\n".encode("latin-1"))

    with pytest.raises(BadInput, match="latin.md is not UTF-8"):
        load_release(tmp_path)
