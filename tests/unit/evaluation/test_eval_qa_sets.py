"""The shipped QA sets: they load, and every expected file, heading and term is in the docs."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import paperless_release

from tandem.evaluation.qa import QAItem, load_qa
from tandem.evaluation.scores import contains_phrase

ROOT = Path(__file__).resolve().parents[3]
EVAL = ROOT / "eval"
_FENCE = re.compile(r"^\s*(```|~~~)")
_ATTRS = re.compile(r"\s*\{[:#.][^{}]*\}\s*$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def headings(page: Path) -> list[str]:
    """The visible text of each Markdown heading (outside code fences) of `page`."""
    found, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6}\s", line):
            text = _LINK.sub(r"\1", _ATTRS.sub("", line.lstrip("#").strip()))
            found.append(text.replace("`", "").replace("~~", "").replace("**", ""))
    return found


def problems(items: list[QAItem], docs_for: dict[str | None, Path]) -> list[str]:
    """Every way the QA items disagree with the docs they claim to be about."""
    found = []
    for item in items:
        where = f"line {item.line} ({item.question[:50]})"
        if item.file is None:
            if item.answer_terms:
                found.append(f"{where}: answerable questions name their source file")
            continue
        page = docs_for[item.release] / item.file
        if not page.is_file():
            found.append(f"{where}: {page} does not exist")
            continue
        if item.heading and not any(contains_phrase(h, item.heading) for h in headings(page)):
            found.append(f"{where}: heading {item.heading!r} is not a heading of {item.file}")
        text = page.read_text(encoding="utf-8")
        found += [
            f"{where}: term {t!r} is not in {item.file}"
            for t in item.answer_terms
            if not contains_phrase(text, t)
        ]
    return found


def test_paperless_qa_set_matches_the_docs() -> None:
    docs = paperless_release("v3.0.5")  # fails, never skips, without the shared corpus
    items = load_qa(EVAL / "paperless-ngx.jsonl")
    assert len(items) >= 32
    assert sum(1 for i in items if not i.answerable) >= 15
    assert sum(1 for i in items if i.history) >= 5
    assert problems(items, {None: docs}) == []


def test_sample_product_qa_set_matches_the_docs() -> None:
    items = load_qa(EVAL / "sample-product.jsonl")
    assert len(items) >= 40
    releases = {i.release for i in items}
    assert releases == {"v4.1", "v4.2"}, "every question names its release, both are covered"
    assert sum(1 for i in items if not i.answerable) >= 15
    assert sum(1 for i in items if i.history) >= 5
    docs: dict[str | None, Path] = {r: ROOT / "corpus" / r for r in ("v4.1", "v4.2")}
    assert problems(items, docs) == []
