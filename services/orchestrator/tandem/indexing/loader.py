"""Load one docs release: every Markdown page under its folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from tandem.documents import Page
from tandem.errors import BadInput

SKIPPED_FOLDERS = frozenset({"overrides", "assets"})  # MkDocs theme overrides and static files


def _is_page(relative: PurePosixPath) -> bool:
    """A Markdown page that MkDocs would render, not a hidden file or a theme/asset file."""
    if any(part.startswith(".") for part in relative.parts):
        return False
    return not any(part in SKIPPED_FOLDERS for part in relative.parts[:-1])


def _read(path: Path, relative: str) -> Page:
    try:
        return Page(file=relative, text=path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text; re-save it as UTF-8 and index again") from exc


def load_release(folder: Path) -> list[Page]:
    """Every Markdown page under `folder`, sorted by its path relative to the folder."""
    if not folder.exists():
        raise BadInput(f"docs folder {folder} does not exist; pass the folder of the release")
    if not folder.is_dir():
        raise BadInput(f"{folder} is a file; pass the folder that holds the release's .md pages")
    found = {
        relative.as_posix(): path
        for path in folder.rglob("*.md")
        if path.is_file() and _is_page(relative := PurePosixPath(path.relative_to(folder)))
    }
    if not found:
        raise BadInput(
            f"{folder} holds no Markdown pages (*.md, outside hidden, overrides/ and assets/ "
            "folders); pass the docs folder of the release, e.g. the one mkdocs.yml points at"
        )
    return [_read(found[name], name) for name in sorted(found)]
