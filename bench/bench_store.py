"""The embedded doc store: the edge engine against qdrant-client's local mode, in one run.

1. `/v1/retrieve` p50/p95 on paperless-ngx v3.0.5 (real MiniLM, the eval questions), the
   real app over HTTP on each backend holding the very same points (ratio). The app runs as
   a server does: uvicorn in a process of its own (this script, `--serve BACKEND`), both
   backends up at once, and beside the default edge server three variants of it (`VARIANTS`):
   queries on the other weights, on one 32-token shape instead of the shortest of 16/24/32,
   and on the dynamic-shape model (TANDEM_RETRIEVAL__QUERY_TOKENS=0); the client asks them
   in interleaved blocks, with the query embedding of each variant timed in this process
   between them (`retrieve_ms`).
2. Scale: a corpus of N chunks generated from paperless-ngx v3.0.5 — its 1,695 real chunks
   repeated with their real vectors randomly perturbed (dense: Gaussian noise, renormalised;
   sparse: the real BM25 vector) and distinct payloads — for search p50 (the hybrid query
   alone, with real query vectors), index throughput (upsert + flush/optimize) and the RSS
   the process grows by. qdrant-client's local mode (in memory, its faster variant) runs the
   scale step only up to 20k.

Run: `.venv/bin/python bench/bench_store.py [--sizes 20000,100000] [--queries 52]`.
Prints figures and ratios; asserts nothing. Another process sharing the cores skews them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import uvicorn
from qdrant_client import QdrantClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit, the tests' kits

from bench._kit import (  # noqa: E402
    PAPERLESS,
    QA,
    free_port,
    hits,
    percentile,
    questions,
    stop,
    top_k,
    wait_ready,
)

from tandem.adapters.registry import AdapterRegistry  # noqa: E402
from tandem.answering.turn import ChatService  # noqa: E402
from tandem.api.app import build_services, create_app  # noqa: E402
from tandem.api.deps import Services  # noqa: E402
from tandem.documents import Chunk  # noqa: E402
from tandem.evaluation.qa import load_qa  # noqa: E402
from tandem.indexing.reindex import index_release  # noqa: E402
from tandem.llm.pool import VllmPool  # noqa: E402
from tandem.rag.embedder import Embedder, build_embedder  # noqa: E402
from tandem.rag.onnx_embedder import query_weights_for_this_cpu  # noqa: E402
from tandem.rag.retriever import Retriever  # noqa: E402
from tandem.rag.sparse import query_vector  # noqa: E402
from tandem.settings import Settings, VllmSettings  # noqa: E402
from tandem.stores.deployment import Stores  # noqa: E402
from tandem.stores.docs import DocStore, StoredVectors  # noqa: E402
from tandem.stores.edge_docs import EdgeDocStore  # noqa: E402
from tandem.stores.qdrant_docs import QdrantDocStore  # noqa: E402
from tandem.stores.sqlite import StateDatabase  # noqa: E402
from tandem.stores.sqlite_state import SqliteStateStore  # noqa: E402

Rows = list[tuple[Chunk, StoredVectors]]
# TANDEM_RETRIEVAL__QUERY_WEIGHTS: "edge" runs the default (auto: fp32 where the CPU has AMX,
# int8 elsewhere), OTHER the other weights; OTHER_WEIGHTS says which they are
AUTO_WEIGHTS = query_weights_for_this_cpu("auto")
OTHER_WEIGHTS = "fp32" if AUTO_WEIGHTS == "int8" else "int8"
OTHER = "edge, other query weights"
DYNAMIC = "edge, dynamic shape"  # the edge app with TANDEM_RETRIEVAL__QUERY_TOKENS=0 (fp32)
ONE_SHAPE = "edge, one 32-token shape"  # TANDEM_RETRIEVAL__QUERY_TOKENS=32 (default weights)
BACKENDS = ("edge", OTHER, ONE_SHAPE, DYNAMIC, "qdrant-client local")
# each edge variant's own copy of the data (one open per path) and its retrieval settings
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "edge": ("data", {}),
    OTHER: ("data-other", {"query_weights": OTHER_WEIGHTS}),
    DYNAMIC: ("data-dynamic", {"query_tokens": []}),
    ONE_SHAPE: ("data-one-shape", {"query_tokens": [32]}),
}
EMBEDDING = "query embedding"  # in-process, timed between the servers' blocks
EMBEDDING_CPU = "  its CPU time"  # the same calls' process CPU time: slow spells are slow CPU
EMBEDDING_OTHER = "  on the other weights"  # the same embedder with OTHER_WEIGHTS
EMBEDDING_DYNAMIC = "  on the dynamic shape"  # the same embedder with QUERY_TOKENS=0
EMBEDDING_ONE_SHAPE = "  on one 32-token shape"  # the same embedder with QUERY_TOKENS=32
FLOOR = "GET /healthz on edge"  # HTTP, uvicorn and the middleware with no work behind them
LOCAL = "qdrant-local"  # under the work dir: qdrant-client's local mode, a copy of the points


def bench_settings(work: Path, vllm_url: str, variant: str = "edge") -> Settings:
    """Retrieval only, for one of the edge `VARIANTS` (the qdrant-client server: "edge")."""
    folder, update = VARIANTS.get(variant, VARIANTS["edge"])
    settings = Settings(data_dir=work / folder, vllm=VllmSettings(url=vllm_url))
    retrieval = settings.retrieval.model_copy(update=update)
    return settings.model_copy(update={"retrieval": retrieval})


def serve_backend(backend: str, work: Path, vllm_url: str, port: int) -> None:
    """The real app on `backend`, served by uvicorn as `tandem up` and the ASGI entry do."""
    settings = bench_settings(work, vllm_url, backend)
    embedder = build_embedder(settings, "queries")
    if backend in VARIANTS:
        services = build_services(settings, embedder)
    else:
        services = local_services(settings, embedder, work / LOCAL)
    app = create_app(settings, services_factory=lambda _: services, freeze=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def served(backend: str, work: Path, vllm_url: str) -> tuple[str, subprocess.Popen[bytes]]:
    """This script serving `backend` in a process of its own, once it answers."""
    port = free_port()
    command = [sys.executable, __file__, "--serve", backend, "--work", str(work)]
    process = subprocess.Popen([*command, "--port", str(port), "--vllm-url", vllm_url])
    url = f"http://127.0.0.1:{port}"
    try:  # /healthz: there is no vLLM behind this app, so it is never "ready"
        wait_ready(url, process, 300, path="/healthz", name=f"the {backend} server")
    except SystemExit:
        stop(process)
        raise
    return url, process


def retrieve_ms(
    urls: dict[str, str],
    embedders: dict[str, Embedder],
    qs: list[str],
    rounds: int = 2,
    block: int = 13,
) -> dict[str, list[float]]:
    """`/v1/retrieve` on every server, and the query embedding in this process, interleaved.

    Blocks of `block` questions go to each in turn, who goes first rotating, so that all see
    the same moments of this VM (whose speed drifts by 2x within minutes) and a ratio
    compares like with like. The embedding's CPU time beside its wall time tells a slow CPU
    from waiting. `FLOOR` times a request to the edge server that does nothing.
    """
    names = [*urls, FLOOR, *embedders]
    times: dict[str, list[float]] = {name: [] for name in [*names, EMBEDDING_CPU]}
    clients = {name: httpx.Client(base_url=url, timeout=60) for name, url in urls.items()}
    clients[FLOOR] = httpx.Client(base_url=urls["edge"], timeout=60)

    def one(name: str, question: str) -> float:
        t0, cpu0 = time.perf_counter(), time.process_time()
        if name in embedders:
            embedders[name].embed_query(question)
            if name == EMBEDDING:
                times[EMBEDDING_CPU].append((time.process_time() - cpu0) * 1000)
        elif name == FLOOR:
            clients[name].get("/healthz").raise_for_status()
        else:
            body = {"query": question, "top_k": 4}
            clients[name].post("/v1/retrieve", json=body).raise_for_status()
        return (time.perf_counter() - t0) * 1000

    try:
        for name in names:
            for question in qs[:5]:
                one(name, question)
        times[EMBEDDING_CPU].clear()  # (the warm-up's)
        starts = [start for _ in range(rounds) for start in range(0, len(qs), block)]
        for turn, start in enumerate(starts):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                times[name] += [one(name, q) for q in qs[start : start + block]]
    finally:
        for client in clients.values():
            client.close()
    return times


def split_ms(services: Services, qs: list[str], rounds: int = 2) -> dict[str, list[float]]:
    """Where a request's time goes, in-process: the query embedding, then the whole retrieve."""
    times: dict[str, list[float]] = {"embedding": [], "retrieve": []}
    for _ in range(rounds):
        for q in qs:
            t0 = time.perf_counter()
            services.embedder.embed_query(q)
            t1 = time.perf_counter()
            services.retriever.retrieve(q, 4)
            t2 = time.perf_counter()
            times["embedding"].append((t1 - t0) * 1000)
            times["retrieve"].append((t2 - t1) * 1000)
    return times


def query_weights_quality(stores: Stores, int8: Embedder, fp32: Embedder) -> dict[str, Any]:
    """The int8-weight query model against fp32 weights on the same stored points: hit@4 on
    the eval questions, the share of the top 4 both return, the vectors' cosine."""
    qa = [item for item in load_qa(QA) if item.file]
    tops = {name: top_k(stores, e, qa) for name, e in (("int8", int8), ("fp32", fp32))}
    shared = [
        len({c.content_hash for c in a} & {c.content_hash for c in b}) / 4
        for a, b in zip(tops["int8"], tops["fp32"], strict=True)
    ]
    cosines = [
        float(np.dot(int8.embed_query(i.question), fp32.embed_query(i.question))) for i in qa
    ]
    return {
        "questions": len(qa),
        "int8 hits": sum(hits(qa, tops["int8"])),
        "fp32 hits": sum(hits(qa, tops["fp32"])),
        "overlap": float(np.mean(shared)),
        "cosine min": min(cosines),
    }


def copy_to_local(edge: Stores, path: Path, dim: int) -> None:
    """qdrant-client's local mode at `path`, holding a copy of the serving edge points."""
    docs = QdrantDocStore(QdrantClient(path=str(path)), dim)
    collection = edge.docs.pointer_target("docs")
    assert collection is not None
    rows = [(c, v) for c, v in edge.docs.scroll_chunks(collection, with_vectors=True) if v]
    docs.create_collection(collection)
    for start in range(0, len(rows), 256):
        part = rows[start : start + 256]
        docs.upsert(collection, [c for c, _ in part], [v for _, v in part])
    docs.move_pointer("docs", collection)
    docs.close()


def local_services(settings: Settings, embedder: Embedder, path: Path) -> Services:
    """The same app over qdrant-client's local mode at `path` (see `copy_to_local`)."""
    docs = QdrantDocStore(QdrantClient(path=str(path)), embedder.dim)
    stores = Stores(docs, SqliteStateStore(StateDatabase(settings.state_path)))
    retriever = Retriever(stores, embedder, "docs", settings.retrieval.prefetch)
    registry = AdapterRegistry(settings.adapters_dir, stores.state)
    pool = VllmPool.from_settings(settings.vllm)
    chat = ChatService(settings, retriever, registry, pool)
    return Services(settings, stores, embedder, retriever, registry, pool, chat)


def generated(rows: Rows, size: int, seed: int = 7) -> Rows:
    """`size` chunks: the real ones, then copies with perturbed dense vectors (see top)."""
    rng = np.random.default_rng(seed)
    out: Rows = list(rows[:size])
    base = np.array([v.dense for _, v in rows], dtype=np.float32)
    for start in range(len(rows), size, len(rows)):
        count = min(len(rows), size - start)
        noisy = base[:count] + rng.normal(0.0, 0.02, (count, base.shape[1])).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        for (chunk, vectors), dense in zip(rows[:count], noisy, strict=True):
            copy = Chunk(f"gen{start}/{chunk.file}", chunk.heading, chunk.text, "gen")
            out.append((copy, StoredVectors(dense.tolist(), vectors.sparse)))
    return out


def scale(store: DocStore, rows: Rows, probes: list[tuple[list[float], str]]) -> dict[str, float]:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    t0 = time.perf_counter()
    store.create_collection("docs-scale")
    for start in range(0, len(rows), 256):
        part = rows[start : start + 256]
        store.upsert("docs-scale", [c for c, _ in part], [v for _, v in part])
    store.finish("docs-scale")
    seconds = time.perf_counter() - t0
    times = []
    for dense, question in probes:
        t1 = time.perf_counter()
        store.hybrid_query("docs-scale", dense, query_vector(question), 8, 24)
        times.append((time.perf_counter() - t1) * 1000)
    grown = (process.memory_info().rss - rss_before) / 2**20
    return {
        "points_s": len(rows) / seconds,
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "rss": grown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="20000", help="comma-separated corpus sizes ('' skips the scale step)"
    )
    parser.add_argument("--queries", type=int, default=52)
    parser.add_argument("--serve", choices=BACKENDS, help=argparse.SUPPRESS)  # the server
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--vllm-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_backend(args.serve, args.work, args.vllm_url, args.port)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    vllm_url = f"http://127.0.0.1:{free_port()}"
    settings = bench_settings(work, vllm_url)
    embedder = build_embedder(settings, "queries")
    qs = questions(args.queries)
    try:
        edge_services = build_services(settings, embedder)
        folder = PAPERLESS
        report = index_release(edge_services.stores, embedder, folder, "v3.0.5", "docs")
        print(f"paperless-ngx v3.0.5: {report.chunks} chunks indexed on edge")
        split = split_ms(edge_services, qs)
        others = {
            name: build_embedder(bench_settings(work, vllm_url, variant), "queries")
            for name, variant in (
                (EMBEDDING_OTHER, OTHER),
                (EMBEDDING_ONE_SHAPE, ONE_SHAPE),
                (EMBEDDING_DYNAMIC, DYNAMIC),
            )
        }
        by_weights = {AUTO_WEIGHTS: embedder, OTHER_WEIGHTS: others[EMBEDDING_OTHER]}
        quality = query_weights_quality(
            edge_services.stores, by_weights["int8"], by_weights["fp32"]
        )
        collection = report.collection
        rows = [(c, v) for c, v in edge_services.stores.docs.scroll_chunks(collection, True) if v]
        copy_to_local(edge_services.stores, work / LOCAL, embedder.dim)
        edge_services.stores.close()  # one open per path: the edge server opens it next
        for variant in (OTHER, ONE_SHAPE, DYNAMIC):
            shutil.copytree(settings.data_dir, bench_settings(work, vllm_url, variant).data_dir)
        servers = {backend: served(backend, work, vllm_url) for backend in BACKENDS}
        try:
            urls = {backend: url for backend, (url, _) in servers.items()}
            figures = retrieve_ms(urls, {EMBEDDING: embedder, **others}, qs)
            rss = {
                b: psutil.Process(p.pid).memory_info().rss / 2**20 for b, (_, p) in servers.items()
            }
        finally:
            for _, server in servers.values():
                stop(server)
        edge, old = figures["edge"], figures["qdrant-client local"]
        print(
            f"\n/v1/retrieve over {len(edge)} queries (top_k 4, prefetch 24; server processes, "
            "both up, blocks interleaved with the query embedding in this process; query "
            f"weights: {AUTO_WEIGHTS} by default on this CPU, the other {OTHER_WEIGHTS}):"
        )
        for name, times in figures.items():
            p50, p95 = percentile(times, 50), percentile(times, 95)
            print(f"  {name:<26} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        print(
            f"  ratio local/edge: p50 {percentile(old, 50) / percentile(edge, 50):.1f}x, "
            f"p95 {percentile(old, 95) / percentile(edge, 95):.1f}x"
        )
        fp32 = ("edge", EMBEDDING) if AUTO_WEIGHTS == "fp32" else (OTHER, EMBEDDING_OTHER)
        weights = f"{OTHER_WEIGHTS}/{AUTO_WEIGHTS} query weights"
        for what, label, fast, slow in (
            (weights, "edge /v1/retrieve", "edge", OTHER),
            (weights, "query embedding", EMBEDDING, EMBEDDING_OTHER),
            ("one 32-token shape/16, 24, 32", "edge /v1/retrieve", "edge", ONE_SHAPE),
            ("one 32-token shape/16, 24, 32", "query embedding", EMBEDDING, EMBEDDING_ONE_SHAPE),
            ("dynamic/static query shape (fp32)", "edge /v1/retrieve", fp32[0], DYNAMIC),
            ("dynamic/static query shape (fp32)", "query embedding", fp32[1], EMBEDDING_DYNAMIC),
        ):
            p50, p95 = (
                percentile(figures[slow], q) / percentile(figures[fast], q) for q in (50, 95)
            )
            print(f"  ratio {what}, {label}: p50 {p50:.2f}x, p95 {p95:.2f}x")
        print(
            "  server RSS after the queries: "
            + ", ".join(f"{b} {m:.0f} MiB" for b, m in rss.items())
        )
        rest = percentile(edge, 50) - percentile(figures[EMBEDDING], 50)
        print(f"  edge p50 minus the embedding's (search, HTTP, API, hand-offs): {rest:.1f} ms")
        print(
            f"  int8 against fp32 query weights, over the {quality['questions']} eval questions:"
            f" hit@4 {quality['int8 hits']} against {quality['fp32 hits']}, top-4 overlap "
            f"{quality['overlap']:.3f}, cosine min {quality['cosine min']:.4f}"
        )
        print("  in-process before the servers started (one shard open, same questions):")
        for name, times in split.items():
            p50, p95 = percentile(times, 50), percentile(times, 95)
            print(f"    {name:<18} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        probes = [(embedder.embed_query(q), q) for q in qs]
        print("\nscale (generated from paperless-ngx v3.0.5; hybrid query top 8, prefetch 24):")
        for size in [int(s) for s in args.sizes.split(",") if s]:
            corpus = generated(rows, size)
            backends: list[tuple[str, DocStore]] = [
                ("edge", EdgeDocStore(work / f"scale-{size}", embedder.dim))
            ]
            if size <= 20_000:
                client = QdrantClient(":memory:")  # its on-disk mode writes far slower
                backends.append(("qdrant-client local", QdrantDocStore(client, embedder.dim)))
            for name, store in backends:
                f = scale(store, corpus, probes)
                store.close()
                print(
                    f"  {size:>7,} chunks {name:<20} search p50 {f['p50']:7.2f} ms "
                    f"p95 {f['p95']:7.2f} ms | index {f['points_s']:8,.0f} points/s | "
                    f"RSS +{f['rss']:.0f} MiB"
                )
        print(f"\nprocess RSS at the end: {psutil.Process().memory_info().rss / 2**20:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
