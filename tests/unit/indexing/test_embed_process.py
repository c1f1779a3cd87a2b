"""The index job's model process (hash embedder in a real spawned child): same chunks and
vectors as in-process, bad input raised as itself, low priority, a dead child is a job error
that leaves the old release serving, and no child outlives its job or its orchestrator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pytest
from tests.unit.indexing.test_reindex import PAGES, doc_collections, write_release

from tandem.errors import BadInput, EmbedderFailed
from tandem.indexing.builds import live_build
from tandem.indexing.embed_process import (
    EmbedProcess,
    InProcessModel,
    embed_vectors,
    index_embedder_factory,
    job_model,
)
from tandem.indexing.reindex import index_release
from tandem.indexing.releases import start_index_job
from tandem.jobs import JobManager
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import Retriever
from tandem.settings import IndexSettings, Settings
from tandem.stores.deployment import Stores, open_stores

ALIAS = "docs"
TEXTS = ["Run docker compose up.", "Each token may send 60 requests per minute.", "Use pip."]


class DyingEmbedder(HashEmbedder):
    """Exits the process (as the OOM killer would) on its first document batch."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        os._exit(3)


class BrokenFactory:
    def __call__(self) -> HashEmbedder:
        raise RuntimeError("model files missing")


def gone(pid: int, timeout_s: float = 20.0) -> bool:
    """True once `pid` is no longer a live process (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            if state == "Z":
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


def test_the_child_embeds_the_same_vectors_at_low_priority() -> None:
    process = EmbedProcess(HashEmbedder, HashEmbedder(), niceness=19)
    try:
        got = process.vectors(TEXTS)
        assert process.pid is not None
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == 19
    finally:
        process.close()
    assert got == embed_vectors(HashEmbedder(), TEXTS)
    assert process.pid is not None and gone(process.pid)


def test_the_child_reads_and_chunks_a_release_as_this_process_would(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "v1", PAGES)
    process = EmbedProcess(HashEmbedder, HashEmbedder())
    try:
        got = process.chunks(folder, "v1")
    finally:
        process.close()
    expected = InProcessModel(HashEmbedder()).chunks(folder, "v1")
    assert got == expected and got.pages == len(PAGES) and got.chunks


def test_a_release_built_through_the_child_equals_one_built_in_process(
    store: Stores, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    folder = write_release(tmp_path / "v1", PAGES)
    with job_model(embedder, HashEmbedder) as model:
        built = index_release(store, embedder, folder, "v1", ALIAS, model=model)
    in_child = sorted(store.docs.scroll_chunks(built.collection, with_vectors=True), key=str)
    other = open_stores(Settings(data_dir=tmp_path / "other"), embedder.dim)
    try:
        again = index_release(other, embedder, folder, "v1", ALIAS)
        in_process = sorted(other.docs.scroll_chunks(again.collection, with_vectors=True), key=str)
    finally:
        other.close()
    assert in_child == in_process and len(in_child) == built.chunks


def test_bad_input_found_in_the_child_is_the_jobs_own_error(tmp_path: Path) -> None:
    """A folder without text fails as BadInput (400), not as a broken embedder (500)."""
    empty = write_release(tmp_path / "empty", {"blank.md": "\n\n"})
    with job_model(HashEmbedder(), HashEmbedder) as model:
        with pytest.raises(BadInput, match="produced no text to index"):
            model.chunks(empty, "v1")
        assert model.vectors(TEXTS) == embed_vectors(HashEmbedder(), TEXTS)  # still serving


def test_a_child_of_another_vector_space_is_refused() -> None:
    refused = pytest.raises(EmbedderFailed, match="hash-32 vectors .* embedder makes hash-64")
    with job_model(HashEmbedder(), partial(HashEmbedder, 32)) as model, refused:
        model.vectors(TEXTS)


def test_a_child_that_cannot_build_its_embedder_says_why() -> None:
    failed = pytest.raises(EmbedderFailed, match="RuntimeError: model files missing")
    with job_model(HashEmbedder(), BrokenFactory()) as model, failed:
        model.vectors(TEXTS)


def test_a_dead_child_fails_the_build_and_the_old_release_keeps_serving(
    store: Stores, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    old = index_release(store, embedder, write_release(tmp_path / "v1", PAGES), "v1", ALIAS)
    changed = {**PAGES, "new.md": "# New\n\nA page only v2 has.\n"}
    failed = pytest.raises(EmbedderFailed, match="exit code 3.*serving release is unchanged")
    folder = write_release(tmp_path / "v2", changed)
    with job_model(embedder, DyingEmbedder) as model, failed:
        index_release(store, embedder, folder, "v2", ALIAS, model=model)
    assert store.docs.pointer_target(ALIAS) == old.collection
    assert doc_collections(store) == [old.collection]
    assert live_build(store.state) is None
    retrieval = Retriever(store, embedder, ALIAS, 10).retrieve("docker compose", 2)
    assert retrieval.index.release == "v1" and retrieval.chunks


def test_a_child_killed_mid_job_is_a_clear_job_error(store: Stores, tmp_path: Path) -> None:
    """SIGKILL the embedding process while the admin job embeds: the job fails, v1 serves."""
    embedder = HashEmbedder()
    old = index_release(store, embedder, write_release(tmp_path / "v1", PAGES), "v1", ALIAS)
    pages = {f"p{i}.md": f"# Page {i}\n\nText number {i} of the new release.\n" for i in range(300)}
    folder = write_release(tmp_path / "v2", pages)
    jobs = JobManager(store.state)
    settings = Settings(data_dir=tmp_path / "data")
    job = start_index_job(jobs, store, embedder, settings, folder, "v2", partial(KillOnBatch, 2))
    deadline = time.monotonic() + 60
    while (seen := jobs.get(job.id)).status not in {"succeeded", "failed"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert seen.status == "failed"
    assert seen.error is not None and seen.error.startswith("EmbedderFailed: the index job's")
    assert "exit code -9" in seen.error
    assert seen.progress["stage"] == "embed" and seen.progress["done"] >= 64
    assert store.docs.pointer_target(ALIAS) == old.collection
    assert doc_collections(store) == [old.collection]


class KillOnBatch(HashEmbedder):
    """SIGKILLs its own process on its `n`-th document batch (as `kill -9` would)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if len(self.calls) + 1 == self.n:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().embed_documents(texts)


def test_the_child_goes_when_the_job_ends_and_when_the_orchestrator_is_killed(
    tmp_path: Path,
) -> None:
    process = EmbedProcess(HashEmbedder, HashEmbedder())
    try:
        process.vectors(TEXTS)
        raise RuntimeError("the job failed elsewhere")
    except RuntimeError:
        process.close()
    assert process.pid is not None and gone(process.pid, 1)
    script = textwrap.dedent(
        """
        import os, signal
        from tandem.indexing.embed_process import EmbedProcess
        from tandem.rag.embedder import HashEmbedder
        if __name__ == "__main__":
            process = EmbedProcess(HashEmbedder, HashEmbedder())
            process.vectors(["warm"])
            print(process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    (tmp_path / "orchestrator.py").write_text(script)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "orchestrator.py")], capture_output=True, text=True
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert gone(int(run.stdout.split()[0]))


def test_without_the_setting_a_job_embeds_in_the_serving_process() -> None:
    assert index_embedder_factory(Settings(index=IndexSettings(embed_process=False))) is None
    with job_model(HashEmbedder(), None) as model:
        assert isinstance(model, InProcessModel)
        assert model.vectors(TEXTS) == embed_vectors(HashEmbedder(), TEXTS)
