"""A build whose writes fail (disk full, read-only data dir) fails cleanly; the old release serves.

We run as root, so `chmod -w` would not stop a write. A file size limit does, for root too:
the build runs in a child process that opened the store and then set RLIMIT_FSIZE to 0
(SIGXFSZ ignored), so every write that grows a file fails with EFBIG, as on a full disk.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import CORPUS

from tandem.indexing.history import recover_interrupted_builds
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.stores.deployment import Stores, open_stores

CHILD = """
import resource, signal, sys
from pathlib import Path
from tandem.errors import StorageFailed
from tandem.indexing.reindex import index_release
from tandem.rag.embedder import HashEmbedder
from tandem.settings import Settings
from tandem.stores.deployment import open_stores

store = open_stores(Settings(data_dir=Path(sys.argv[1])), HashEmbedder().dim)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # from here on, the disk is full
try:
    index_release(store, HashEmbedder(), Path(sys.argv[2]), "v4.2", "docs")
except StorageFailed as error:
    print(error)
    sys.exit(3)
"""


def serving(data: Path) -> tuple[Stores, Retriever]:
    store = open_stores(Settings(data_dir=data), HashEmbedder().dim)
    return store, Retriever(store, HashEmbedder(), "docs", 10)


def test_a_build_that_cannot_write_fails_cleanly_and_the_old_release_serves(
    tmp_path: Path,
) -> None:
    store, retriever = serving(tmp_path)
    index_release(store, HashEmbedder(), CORPUS / "v4.1", "v4.1", "docs")
    before = retriever.retrieve("reset my password", 3)
    collections = store.docs.collections()
    store.close()

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(CORPUS / "v4.2")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 3, child.stderr[-2000:]
    assert "the serving release is unchanged" in child.stdout

    store, retriever = serving(tmp_path)
    after = retriever.retrieve("reset my password", 3)
    assert after.index == before.index and after.index.release == "v4.1"
    assert [c.chunk for c in after.chunks] == [c.chunk for c in before.chunks]
    recover_interrupted_builds(store, "docs")
    assert sorted(store.docs.collections()) == sorted(collections)  # the partial build is gone
    store.close()
