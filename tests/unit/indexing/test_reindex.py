"""index_release on the embedded edge store with the HashEmbedder: reuse, changes, bounds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tandem.indexing.builds import live_build
from tandem.indexing.history import load_history
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import Retriever
from tandem.stores.deployment import Stores
from tandem.stores.docs import point_id

ALIAS = "docs"
PAGES = {
    "install.md": "# Install\n\n## Docker\n\nRun docker compose up.\n\n## Bare metal\n\nUse pip.\n",
    "limits.md": "# Limits\n\n## Rate limits\n\nEach token may send 60 requests per minute.\n",
    "old.md": "# Old page\n\nThis page goes away in the next release.\n",
}


def write_release(root: Path, pages: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def doc_collections(store: Stores) -> list[str]:
    return sorted(n for n in store.docs.collections() if n.startswith("docs-"))


def test_first_index_serves_the_release_and_records_it(store: Stores, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    report = index_release(store, embedder, write_release(tmp_path / "v1", PAGES), "v1", ALIAS)

    assert store.docs.pointer_target(ALIAS) == report.collection
    assert (report.chunks, report.embedded, report.reused, report.removed) == (4, 4, 0, 0)
    assert report.changes["summary"]["pages_added"] == 3
    history = load_history(store, ALIAS)
    assert [(e.collection, e.release) for e in history.entries] == [(report.collection, "v1")]
    assert history.entries[0].report["embedded"] == 4
    assert Retriever(store, embedder, ALIAS, 10).index_info().release == "v1"
    assert live_build(store.state) is None


def test_unchanged_release_reuses_every_vector_in_a_new_collection(
    store: Stores, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    folder = write_release(tmp_path / "v1", PAGES)
    first = index_release(store, embedder, folder, "v1", ALIAS)
    embedder.calls.clear()

    second = index_release(store, embedder, folder, "v1", ALIAS)

    assert second.collection != first.collection
    assert (second.embedded, second.reused, second.removed) == (0, 4, 0)
    assert embedder.calls == []
    assert store.docs.count(second.collection) == store.docs.count(first.collection) == 4
    assert second.changes["summary"] == {
        "pages_added": 0,
        "pages_changed": 0,
        "pages_removed": 0,
        "pages_unchanged": 3,
    }


def test_changed_release_embeds_only_new_text_and_reports_what_changed(
    store: Stores, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    index_release(store, embedder, write_release(tmp_path / "v1", PAGES), "v1", ALIAS)
    pages = {k: v for k, v in PAGES.items() if k != "old.md"}
    pages["limits.md"] = pages["limits.md"].replace("60", "120") + "\n## Bursts\n\nUp to 10.\n"
    pages["sso.md"] = "# Single sign-on\n\nSAML for Business plans.\n"
    embedder.calls.clear()

    report = index_release(store, embedder, write_release(tmp_path / "v2", pages), "v2", ALIAS)

    assert (report.embedded, report.reused, report.removed) == (3, 2, 2)
    assert sum(embedder.calls) == 3
    changes = report.changes
    assert changes["previous"]["release"] == "v1"
    assert changes["pages_added"] == [{"file": "sso.md", "headings": ["Single sign-on"]}]
    assert changes["pages_removed"] == [{"file": "old.md", "headings": ["Old page"]}]
    assert changes["pages_changed"] == [
        {
            "file": "limits.md",
            "headings_added": ["Limits > Bursts"],
            "headings_changed": ["Limits > Rate limits"],
            "headings_removed": [],
        }
    ]
    served = [chunk for chunk, _ in store.docs.scroll_chunks(report.collection)]
    assert {c.release for c in served} == {"v2"}
    assert "old.md" not in {c.file for c in served}
    assert len({point_id(c) for c in served}) == len(served) == report.chunks


def test_history_keeps_a_bounded_number_of_releases(store: Stores, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    folder = write_release(tmp_path / "v1", PAGES)
    reports = [index_release(store, embedder, folder, f"r{i}", ALIAS, keep=2) for i in range(4)]

    assert doc_collections(store) == sorted(r.collection for r in reports[-2:])
    assert [e.release for e in load_history(store, ALIAS).entries] == ["r2", "r3"]
    assert reports[-1].deleted_collections == [reports[1].collection]


class FailingEmbedder(HashEmbedder):
    """Embeds the first batch, then fails: an error in the middle of a build."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self.calls:
            raise RuntimeError("embedding backend crashed")
        return super().embed_documents(texts)


def test_an_error_mid_build_leaves_the_old_release_serving_and_nothing_behind(
    store: Stores, tmp_path: Path
) -> None:
    old = index_release(store, HashEmbedder(), write_release(tmp_path / "v1", PAGES), "v1", ALIAS)
    many = {f"p{i}.md": f"# Page {i}\n\nText number {i} of the new release.\n" for i in range(70)}
    folder = write_release(tmp_path / "v2", many)

    with pytest.raises(RuntimeError, match="crashed"):
        index_release(store, FailingEmbedder(), folder, "v2", ALIAS)

    assert store.docs.pointer_target(ALIAS) == old.collection
    assert doc_collections(store) == [old.collection]
    assert live_build(store.state) is None


class OtherModelEmbedder(HashEmbedder):
    """Same dimension, different vectors: another model."""

    def __init__(self) -> None:
        super().__init__()
        self.vector_space = "other-model"


def test_vectors_of_another_model_are_never_reused(store: Stores, tmp_path: Path) -> None:
    folder = write_release(tmp_path / "v1", PAGES)
    index_release(store, HashEmbedder(), folder, "v1", ALIAS)
    other = OtherModelEmbedder()

    report = index_release(store, other, folder, "v1", ALIAS)

    assert (report.embedded, report.reused) == (4, 0)
    assert sum(other.calls) == 4
    assert report.vector_space == "other-model"


def test_reindented_text_reuses_its_vectors_and_is_no_change(store: Stores, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    pages = {"steps.md": "# Steps\n\n-   first\n    -   nested\n\n3.  Migrate the database.\n"}
    index_release(store, embedder, write_release(tmp_path / "v1", pages), "v1", ALIAS)
    reindented = {"steps.md": "# Steps\n\n- first\n  - nested\n\n3. Migrate the database.\n"}
    embedder.calls.clear()

    report = index_release(store, embedder, write_release(tmp_path / "v2", reindented), "v2", ALIAS)

    assert (report.embedded, report.reused, embedder.calls) == (0, 1, [])
    assert report.changes["summary"]["pages_unchanged"] == 1
    [(chunk, _)] = list(store.docs.scroll_chunks(report.collection))
    assert "- first\n  - nested" in chunk.text  # the new text is stored, with the old vectors


def test_progress_reports_each_stage_in_order(store: Stores, tmp_path: Path) -> None:
    """A job's first report comes before the release is read and chunked, not after."""
    seen: list[tuple[str, int, int]] = []
    folder = write_release(tmp_path / "v1", PAGES)
    index_release(store, HashEmbedder(), folder, "v1", ALIAS, lambda *p: seen.append(p))
    assert seen[:2] == [("read", 0, 1), ("read", 1, 1)]
    stages = [stage for stage, _, _ in seen]
    assert list(dict.fromkeys(stages)) == ["read", "embed", "store", "verify"]
