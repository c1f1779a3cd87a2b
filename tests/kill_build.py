"""Kill a re-index of the embedded edge store with SIGKILL in a stage and check the aftermath:
the old release still answers, the leftover shard goes, and running the same re-index again
converges with no duplicates. Shared by the unit test (hash embedder) and the integration
test (real MiniLM)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tandem.indexing.builds import BUILD_LEASE, live_build
from tandem.indexing.history import load_history, recover_interrupted_builds
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import Embedder
from tandem.rag.sparse import query_vector
from tandem.settings import Settings
from tandem.stores.deployment import Stores, open_stores
from tandem.stores.docs import point_id
from tests.conftest import CORPUS, ROOT

# The child re-indexes v4.2 over a store serving v4.1 and parks inside the progress callback
# once `stage` has made progress, so the parent's SIGKILL lands in the middle of that stage.
CHILD = """
import sys, time
from pathlib import Path
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import HashEmbedder, build_embedder
from tandem.settings import Settings
from tandem.stores.deployment import open_stores

data, folder, stage, kind = sys.argv[1:5]
settings = Settings(data_dir=Path(data))
embedder = HashEmbedder() if kind == "hash" else build_embedder(settings)
store = open_stores(settings, embedder.dim)

def progress(at, done, total):
    if at == stage and (done > 0 or stage == "verify"):
        print(f"KILL-ME {at} {done}/{total}", flush=True)
        time.sleep(600)

index_release(store, embedder, Path(folder), "v4.2", "docs", progress, batch_size=8)
print("FINISHED", flush=True)
"""


@contextmanager
def opened(path: Path, dim: int) -> Iterator[Stores]:
    stores = open_stores(Settings(data_dir=path), dim)
    try:
        yield stores
    finally:
        stores.close()


def serving_v41(folder: Path, embedder: Embedder) -> Path:
    """A data dir that serves the sample product's v4.1 (copied for each kill)."""
    path = folder / "data"
    with opened(path, embedder.dim) as store:
        index_release(store, embedder, CORPUS / "v4.1", "v4.1", "docs")
    return path


def run_child_until(stage: str, data: Path, kind: str, timeout_s: float = 300) -> int:
    """Start the child, wait until it reports `stage`, SIGKILL it; returns its pid."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "services/orchestrator")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(CORPUS / "v4.2"), stage, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            line = child.stdout.readline() if ready else ""
            assert "FINISHED" not in line, "the child finished before it could be killed"
            if line.startswith("KILL-ME"):
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
                return child.pid
            assert child.poll() is None, f"the child exited early ({child.returncode})"
        raise AssertionError(f"the child never reached {stage}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def stored_keys(store: Stores, collection: str) -> list[tuple[str, str, str]]:
    return [(c.file, c.heading, c.content_hash) for c, _ in store.docs.scroll_chunks(collection)]


def check_killed_build(
    stage: str, serving: Path, tmp_path: Path, embedder: Embedder, kind: str
) -> None:
    """Copy `serving`, kill a v4.2 build in `stage`, then check what the module doc says."""
    data = tmp_path / "data"
    shutil.copytree(serving, data)
    dense, sparse = embedder.embed_query("install"), query_vector("install")
    with opened(data, embedder.dim) as store:
        old = store.docs.pointer_target("docs")
        assert old is not None
        answer = store.docs.hybrid_query(old, dense, sparse, 4, 20)
    pid = run_child_until(stage, data, kind)

    with opened(data, embedder.dim) as store:  # "restart": a new process opens the store
        assert store.docs.pointer_target("docs") == old
        assert store.docs.hybrid_query(old, dense, sparse, 4, 20) == answer  # old one serves
        leftovers = [n for n in store.docs.collections() if n.startswith("docs-v4.2")]
        assert len(leftovers) == 1
        assert store.state.lease(BUILD_LEASE).data["owner"]["pid"] == pid
        assert live_build(store.state) is None  # its owner is dead

        assert recover_interrupted_builds(store, "docs") == leftovers
        assert [n for n in store.docs.collections() if n.startswith("docs-")] == [old]
        assert load_history(store, "docs").serving == old

        first = index_release(store, embedder, CORPUS / "v4.2", "v4.2", "docs")
        again = index_release(store, embedder, CORPUS / "v4.2", "v4.2", "docs")
        keys = stored_keys(store, again.collection)
        docs = store.docs
        assert docs.count(again.collection) == docs.count(first.collection) == first.chunks
        assert len(set(keys)) == len(keys) == first.chunks
        assert {point_id(c) for c, _ in docs.scroll_chunks(first.collection)} == {
            point_id(c) for c, _ in docs.scroll_chunks(again.collection)
        }
        assert again.embedded == 0
        assert docs.pointer_target("docs") == again.collection
