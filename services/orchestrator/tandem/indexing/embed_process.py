"""The index job's model work in its own process, at low priority and on bounded threads.

An index job started over the admin API runs in the serving process. Its model work there
took both cores (the embedder's threads, plus the job's Python work under the GIL), and
`/v1/retrieve` p95 rose 25x while a release built. In a child process at `nice` 19 with one
thread, the kernel hands a query's embedding the cores whenever it needs them, and nothing
of the job's heavy work holds the serving process's GIL (docs/ARCHITECTURE.md): the child
reads and chunks the release (the chunker counts tokens with the model's tokenizer; ~4 s of
Python for paperless-ngx, which in the serving process made the worst query waits of a
re-index) and embeds the new chunks.

The child builds its own embedder (same model and backend: the vector space is checked)
and returns chunks and dense + sparse vectors; the parent keeps everything that touches the
stores.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from tandem.errors import EmbedderFailed, TandemError
from tandem.indexing.chunking import LoadedRelease, load_chunks
from tandem.rag.embedder import Embedder, build_embedder, vector_space
from tandem.rag.sparse import document_vector
from tandem.settings import Settings
from tandem.stores.docs import StoredVectors

EmbedderFactory = Callable[[], Embedder]  # picklable: it runs in the child
START_TIMEOUT_S = 600.0  # a cold start exports the ONNX model once, at low priority


def index_embedder_factory(settings: Settings) -> EmbedderFactory | None:
    """The job embedder TANDEM_INDEX__EMBED_PROCESS asks for: the serving model on bounded
    threads (None: the job embeds in the serving process)."""
    if not settings.index.embed_process:
        return None
    return partial(build_embedder, settings, "index-job")


def embed_vectors(embedder: Embedder, texts: Sequence[str]) -> list[StoredVectors]:
    """Dense and sparse vectors of `texts` (what a build stores for each new chunk)."""
    dense = embedder.embed_documents(list(texts))
    return [
        StoredVectors(vector, document_vector(t)) for t, vector in zip(texts, dense, strict=True)
    ]


class JobModel(Protocol):
    """The model work of an index job: a release's chunks (the chunker counts tokens with the
    model's tokenizer) and the dense + sparse vectors of the chunks it must embed."""

    def chunks(self, folder: Path, release: str) -> LoadedRelease: ...

    def vectors(self, texts: Sequence[str]) -> list[StoredVectors]: ...


class InProcessModel:
    """A job's model work done with `embedder` in this process."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def chunks(self, folder: Path, release: str) -> LoadedRelease:
        return load_chunks(folder, release, self.embedder.count_tokens)

    def vectors(self, texts: Sequence[str]) -> list[StoredVectors]:
        return embed_vectors(self.embedder, texts)


def _child(conn: Connection, factory: EmbedderFactory, niceness: int) -> None:
    """The child's loop: build the embedder, then answer each request until told to stop."""
    os.nice(niceness)  # first: the model load runs at low priority too
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the tokenizer's own pool stays off
    try:
        model = InProcessModel(factory())
        conn.send(("ready", model.embedder.dim, vector_space(model.embedder)))
        while (request := conn.recv()) is not None:
            kind, *args = request
            try:
                answer = model.chunks(*args) if kind == "chunks" else model.vectors(*args)
            except TandemError as error:  # bad input (no pages, no text): the job's own error
                conn.send(("refused", error))
                continue
            conn.send((kind, answer))
    except (EOFError, BrokenPipeError):  # the parent went away: nothing to answer
        return
    except Exception as error:  # noqa: BLE001 - the parent turns it into the job's error
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(error).__name__}: {error}"))


class EmbedProcess:
    """A child process that does an index job's model work (started at once, used lazily)."""

    def __init__(self, factory: EmbedderFactory, serving: Embedder, niceness: int = 19) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_child,
            args=(child_conn, factory, niceness),
            name="tandem-index-embedder",
            daemon=True,  # never outlives the orchestrator
        )
        self._process.start()
        child_conn.close()  # the child's end lives in the child: its exit means EOF here
        self._expected = (serving.dim, vector_space(serving))
        self._ready = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def chunks(self, folder: Path, release: str) -> LoadedRelease:
        """`folder` read and chunked in the child (its BadInput is raised here as it is)."""
        loaded: LoadedRelease = self._ask("chunks", folder, release)
        return loaded

    def vectors(self, texts: Sequence[str]) -> list[StoredVectors]:
        """Dense + sparse vectors of `texts`, computed in the child."""
        vectors: list[StoredVectors] = self._ask("vectors", list(texts))
        return vectors

    def _ask(self, kind: str, *args: Any) -> Any:
        if not self._ready:
            self._check_ready()
        self._send((kind, *args))
        return self._receive(kind, None)[0]

    def _check_ready(self) -> None:
        dim, space = self._receive("ready", START_TIMEOUT_S)
        if (dim, space) != self._expected:
            raise EmbedderFailed(
                f"the index embedder process makes {space} vectors ({dim}-d) but the serving "
                f"embedder makes {self._expected[1]} ({self._expected[0]}-d); set "
                "TANDEM_INDEX__EMBED_PROCESS=false or give both the same model"
            )
        self._ready = True

    def _send(self, message: Any) -> None:
        try:
            self._conn.send(message)
        except OSError as error:
            raise self._failure(str(error)) from error

    def _receive(self, kind: str, timeout_s: float | None) -> tuple[Any, ...]:
        try:
            if timeout_s is not None and not self._conn.poll(timeout_s):
                raise self._failure(f"not ready after {timeout_s:.0f} s")
            message = self._conn.recv()
        except (EOFError, OSError) as error:
            raise self._failure("it exited") from error
        if message[0] == "error":
            raise self._failure(message[1])
        if message[0] == "refused":
            raise message[1]
        if message[0] != kind:
            raise self._failure(f"unexpected answer {message[0]!r}")
        return tuple(message[1:])

    def _failure(self, why: str) -> EmbedderFailed:
        self._process.join(timeout=5)
        code = self._process.exitcode
        status = "still running" if code is None else f"exit code {code}"
        return EmbedderFailed(
            f"the index job's model process (reading, chunking, embedding) failed ({why}; "
            f"{status}); the serving release is unchanged"
        )

    def close(self) -> None:
        """Stop the child: asked first, then terminated, then killed."""
        with contextlib.suppress(OSError):  # already gone
            self._conn.send(None)
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


@contextmanager
def job_model(
    serving: Embedder, factory: EmbedderFactory | None, niceness: int = 19
) -> Iterator[JobModel]:
    """Where a job's model work runs: in a child built by `factory`, or (None) with `serving`
    in this process."""
    if factory is None:
        yield InProcessModel(serving)
        return
    process = EmbedProcess(factory, serving, niceness)
    try:
        yield process
    finally:
        process.close()
