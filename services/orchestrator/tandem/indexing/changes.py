"""What changed between two releases: pages added / changed / removed, with their headings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from tandem.documents import Chunk

# file -> heading -> the content hashes of that section's chunks
Outline = dict[str, dict[str, set[str]]]


def outline(chunks: Iterable[Chunk], key: Callable[[Chunk], str]) -> Outline:
    """Each page's sections and the keys (content hashes) of their chunks."""
    pages: Outline = defaultdict(lambda: defaultdict(set))
    for chunk in chunks:
        pages[chunk.file][chunk.heading].add(key(chunk))
    return {file: dict(sections) for file, sections in pages.items()}


def _page_change(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, Any]:
    common = before.keys() & after.keys()
    return {
        "headings_added": sorted(after.keys() - before.keys()),
        "headings_changed": sorted(h for h in common if before[h] != after[h]),
        "headings_removed": sorted(before.keys() - after.keys()),
    }


def release_changes(
    before: Outline, after: Outline, previous: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The release-day report: every added, changed and removed page with its headings."""
    added = [
        {"file": f, "headings": sorted(after[f])} for f in sorted(after.keys() - before.keys())
    ]
    removed = [
        {"file": f, "headings": sorted(before[f])} for f in sorted(before.keys() - after.keys())
    ]
    changed = []
    for file in sorted(before.keys() & after.keys()):
        if before[file] != after[file]:
            changed.append({"file": file, **_page_change(before[file], after[file])})
    return {
        "previous": previous or {"release": None, "collection": None},
        "summary": {
            "pages_added": len(added),
            "pages_changed": len(changed),
            "pages_removed": len(removed),
            "pages_unchanged": len(before.keys() & after.keys()) - len(changed),
        },
        "pages_added": added,
        "pages_changed": changed,
        "pages_removed": removed,
    }
