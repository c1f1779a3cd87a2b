"""`DocStore` on `qdrant-edge-py`: Qdrant's own Rust engine in-process, on disk.

Layout under the root (the data dir's `index/`):
    shards/<collection>/   one edge shard per collection (per release build)
    pointers/<name>.json   {"collection": ...}: which shard a pointer serves
    .lock                  held by the one process that opens this store

Edge has no aliases, so a pointer is a file replaced atomically (write, fsync, rename,
fsync the folder): a reader sees the old or the new collection, never a torn one, and a
crash before the rename leaves the old release serving. Shard handles are reference
counted: a query holds its shard until it returns, a pointer move retires the old handle
(closed when its last query ends), and deleting a collection waits for its queries.
A shard holds its WAL exclusively, so one process opens the store; a second one gets
`DependencyDown` and uses the running Tandem's admin API instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    Fusion,
    Modifier,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    UpdateOperation,
)
from qdrant_edge import SparseVector as EdgeSparse

from tandem.documents import Chunk, ScoredChunk
from tandem.errors import BadInput, Conflict, DependencyDown
from tandem.rag.sparse import SparseVector
from tandem.stores.docs import (
    DENSE,
    RRF_K,
    SPARSE,
    CollectionGone,
    StoredVectors,
    chunk_from_payload,
    chunk_payload,
    dense_similarity,
    point_id,
    stored_vectors,
)

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
DRAIN_TIMEOUT_S = 60.0
SEARCH_THREADS = 1  # a shard's own search pool; queries run in the callers' threads too


@dataclass
class _Handle:
    shard: EdgeShard
    refs: int = 0
    retired: bool = False  # close when the last query ends
    deleting: bool = False  # no new queries


def _lock(path: Path) -> IO[str]:
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DependencyDown(
            f"the embedded Qdrant store at {path.parent} is in use by another process "
            "(is `tandem up` running? use the admin API, or stop it first)"
        ) from None
    return handle


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class EdgeDocStore:
    """Doc collections as edge shards under `root`; pointers are files."""

    def __init__(self, root: Path, dim: int) -> None:
        self.root = root
        self.dim = dim
        (root / "shards").mkdir(parents=True, exist_ok=True)
        (root / "pointers").mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock(root / ".lock")
        self._handles: dict[str, _Handle] = {}
        self._changed = threading.Condition()
        self._seen: dict[str, tuple[tuple[int, int, int], str | None]] = {}

    # --- collections -------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if not NAME.match(name):
            raise BadInput(f"{name!r} is not a valid collection name")
        return self.root / "shards" / name

    def create_collection(self, name: str) -> None:
        path = self._path(name)
        if path.exists():
            raise Conflict(f"collection {name} already exists")
        config = EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=self.dim, distance=Distance.Cosine)},
            sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            max_search_threads=SEARCH_THREADS,
        )
        with self._changed:
            self._handles[name] = _Handle(EdgeShard.create(str(path), config))

    def delete_collection(self, name: str) -> None:
        """Wait for the queries on it to end, close it, remove its directory."""
        path = self._path(name)
        with self._changed:
            handle = self._handles.get(name)
            if handle is not None:
                handle.deleting = True
                if not self._changed.wait_for(lambda: handle.refs == 0, DRAIN_TIMEOUT_S):
                    handle.deleting = False
                    raise Conflict(f"queries on {name} did not end; not deleting it")
                if self._handles.get(name) is handle:  # the last query may have closed it
                    self._handles.pop(name).shard.close()
        shutil.rmtree(path, ignore_errors=True)

    def collections(self) -> list[str]:
        return sorted(p.name for p in (self.root / "shards").iterdir() if p.is_dir())

    @contextlib.contextmanager
    def _using(self, name: str) -> Iterator[EdgeShard]:
        """The open shard of `name`, held (not closed) until the block ends."""
        with self._changed:
            handle = self._handles.get(name)
            if handle is None or handle.deleting:
                path = self._path(name)
                if (handle and handle.deleting) or not (path / "edge_config.json").is_file():
                    raise CollectionGone(f"collection {name} does not exist")
                handle = self._handles[name] = _Handle(EdgeShard.load(str(path)))
            handle.refs += 1
        try:
            yield handle.shard
        finally:
            with self._changed:
                handle.refs -= 1
                if handle.refs == 0 and handle.retired and self._handles.get(name) is handle:
                    self._handles.pop(name).shard.close()
                self._changed.notify_all()

    def _retire(self, name: str) -> None:
        """Close `name` once its queries end (it opens again if asked for later)."""
        with self._changed:
            handle = self._handles.get(name)
            if handle is None:
                return
            handle.retired = True
            if handle.refs == 0:
                self._handles.pop(name).shard.close()

    def count(self, name: str) -> int:
        with self._using(name) as shard:
            return int(shard.count(CountRequest(exact=True)))

    def upsert(self, name: str, chunks: Sequence[Chunk], vectors: Sequence[StoredVectors]) -> None:
        points = [
            Point(
                point_id(chunk),
                {DENSE: v.dense, SPARSE: EdgeSparse(v.sparse.indices, v.sparse.values)},
                chunk_payload(chunk),
            )
            for chunk, v in zip(chunks, vectors, strict=True)
        ]
        with self._using(name) as shard:
            shard.update(UpdateOperation.upsert_points(points))

    def finish(self, name: str) -> None:
        """Flush to disk and merge segments: edge optimizes only when asked."""
        with self._using(name) as shard:
            shard.flush()
            shard.optimize()

    def scroll_chunks(
        self, name: str, with_vectors: bool = False
    ) -> Iterator[tuple[Chunk, StoredVectors | None]]:
        offset: Any = None
        while True:
            with self._using(name) as shard:
                request = ScrollRequest(
                    offset=offset, limit=256, with_payload=True, with_vector=with_vectors
                )
                records, offset = shard.scroll(request)
            for record in records:
                vectors = stored_vectors(record.vector) if with_vectors else None
                yield chunk_from_payload(dict(record.payload or {})), vectors
            if offset is None:
                return

    def hybrid_query(
        self, collection: str, dense: list[float], sparse: SparseVector, top_k: int, prefetch: int
    ) -> list[ScoredChunk]:
        prefetches = [Prefetch(limit=prefetch, query=Query.Nearest(dense, using=DENSE))]
        if sparse.indices:
            vector = EdgeSparse(sparse.indices, sparse.values)
            prefetches.append(Prefetch(limit=prefetch, query=Query.Nearest(vector, using=SPARSE)))
        request = QueryRequest(
            limit=top_k,
            prefetches=prefetches,
            query=Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the 0.9 stubs miss Rrf
            with_payload=True,
            with_vector=[DENSE],  # the relevance gate reads each block's dense similarity
        )
        with self._using(collection) as shard:
            points = shard.query(request)
        return [
            ScoredChunk(
                chunk=chunk_from_payload(dict(p.payload or {})),
                score=float(p.score),
                similarity=dense_similarity(dense, p.vector),
            )
            for p in points
        ]

    # --- pointers ----------------------------------------------------------------------
    def _pointer_file(self, pointer: str) -> Path:
        if not NAME.match(pointer):
            raise BadInput(f"{pointer!r} is not a valid pointer name")
        return self.root / "pointers" / f"{pointer}.json"

    def pointer_target(self, pointer: str) -> str | None:
        """Read the pointer file (only when it changed); retire the shard it left."""
        path = self._pointer_file(pointer)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        seen = self._seen.get(pointer)
        if seen is not None and seen[0] == key:
            return seen[1]
        target = json.loads(path.read_text(encoding="utf-8")).get("collection")
        self._seen[pointer] = (key, target)
        if seen is not None and seen[1] not in {None, target}:
            self._retire(str(seen[1]))
        return str(target) if target else None

    def move_pointer(self, pointer: str, collection: str) -> None:
        if not (self._path(collection) / "edge_config.json").is_file():
            raise CollectionGone(f"collection {collection} does not exist")
        before = self.pointer_target(pointer)
        write_atomically(
            self._pointer_file(pointer), {"collection": collection, "published": time.time()}
        )
        self.pointer_target(pointer)  # records the new target and retires `before`
        if before is not None and before != collection:
            self._retire(before)

    def pointed_at(self) -> set[str]:
        names = (p.stem for p in (self.root / "pointers").glob("*.json"))
        return {target for name in names if (target := self.pointer_target(name))}

    def close(self) -> None:
        with self._changed:
            for handle in self._handles.values():
                handle.shard.close()
            self._handles.clear()
        self._lock_file.close()
