"""Index benchmarks on the real paperless-ngx docs. Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/bench_index.py [--backends torch,onnx,onnx-int8,openvino]

1. each embed backend: full index of v3.0.5 (time, chunks/s, where the time goes) and hit@4
   on eval/paperless-ngx.jsonl (hybrid retrieval, the expected file and heading in the top 4);
2. re-index of the unchanged release, as a share of the full index;
3. v2.20.15 -> v3.0.5 through the admin API of a served app while a client keeps querying
   /v1/retrieve: embedded vs reused, query p95 latency idle, during the re-index and during
   each stage of it, failures; once with the job's model work (reading, chunking, embedding)
   in a child process (TANDEM_INDEX__EMBED_PROCESS, the default) and once in the serving
   process, side by side. The app builds its embedders as `tandem up` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit, the tests' kits
from bench._kit import PAPERLESS, QA, percentile, temp_store, top_k_hits  # noqa: E402
from tests.integration.app_server import serve  # noqa: E402

from tandem.api.app import build_services  # noqa: E402
from tandem.api.deps import Services  # noqa: E402
from tandem.api_client import TandemClient  # noqa: E402
from tandem.evaluation.qa import QAItem, load_qa  # noqa: E402
from tandem.indexing.reindex import IndexReport, index_release  # noqa: E402
from tandem.rag.embedder import EMBED_BACKENDS, build_embedder  # noqa: E402
from tandem.rag.onnx_embedder import query_weights_for_this_cpu  # noqa: E402
from tandem.settings import Settings, VllmSettings, get_settings  # noqa: E402

CORPORA = PAPERLESS.parent  # paperless-ngx's releases
OLD, NEW = "v2.20.15", PAPERLESS.name


def bench_backend(backend: str, qa: list[QAItem]) -> dict[str, Any]:
    """Load the backend, index v3.0.5 from empty, re-index it unchanged, measure hit@4."""
    started = time.perf_counter()
    settings = get_settings()
    retrieval = settings.retrieval.model_copy(update={"embed_backend": backend})
    embedder = build_embedder(settings.model_copy(update={"retrieval": retrieval}))
    load_s = time.perf_counter() - started
    with temp_store(embedder.dim) as store:
        full = index_release(store, embedder, CORPORA / NEW, NEW, "docs")
        unchanged = index_release(store, embedder, CORPORA / NEW, NEW, "docs")
        hits, total = sum(top_k_hits(store, embedder, qa)), len(qa)
    return {
        "backend": backend,
        "load_s": load_s,
        "full": full,
        "unchanged": unchanged,
        "hits": hits,
        "questions": total,
    }


def print_backends(rows: list[dict[str, Any]]) -> None:
    print("\n## Full index of paperless-ngx v3.0.5, per embed backend")
    print(
        "| backend | model load | full index | chunks/s | load+chunk | embed | store | "
        "verify | hit@4 | unchanged re-index | unchanged / full |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base = rows[0]["full"].seconds["total"]
    for row in rows:
        full: IndexReport = row["full"]
        s, again = full.seconds, row["unchanged"].seconds["total"]
        print(
            f"| {row['backend']} | {row['load_s']:.1f} s | {s['total']:.1f} s "
            f"({base / s['total']:.2f}x) | {full.chunks / s['total']:.1f} | "
            f"{s['load_chunk']:.1f} s | {s['embed']:.1f} s | {s['store']:.1f} s | "
            f"{s['verify']:.2f} s | {row['hits']}/{row['questions']} "
            f"({100 * row['hits'] / row['questions']:.1f} %) | {again:.1f} s | "
            f"{100 * again / s['total']:.1f} % |"
        )
    print(f"({rows[0]['full'].chunks} chunks; ratios against {rows[0]['backend']})")


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, Services]]:
    """The real app over uvicorn in a thread, on its own store, with the embedders
    `tandem up` builds from `settings` (queries and, per TANDEM_INDEX__EMBED_PROCESS,
    index jobs)."""
    services = build_services(settings)
    for url in serve(settings, services, log_level="error"):
        yield url, services


class Traffic(threading.Thread):
    """A client querying /v1/retrieve in a loop until stopped."""

    def __init__(self, url: str, questions: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.questions = url, questions
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.started: list[float] = []  # perf_counter at each query's start
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set() and len(self.latencies) < 10_000:
                question = self.questions[len(self.latencies) % len(self.questions)]
                started = time.perf_counter()
                try:
                    response = http.post("/v1/retrieve", json={"query": question, "top_k": 4})
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                self.latencies.append(time.perf_counter() - started)
                self.started.append(started)
                time.sleep(0.05)


def run_job(
    url: str, folder: Path, release: str, stages: list[tuple[float, str]]
) -> dict[str, Any]:
    """Run an index job to its end; `stages` gets (perf_counter, stage) at each stage change
    the job reports (polled every 0.2 s)."""

    def seen(progress: dict[str, Any]) -> None:
        if not stages or stages[-1][1] != progress["stage"]:
            stages.append((time.perf_counter(), progress["stage"]))

    with TandemClient(url) as api:
        job = api.wait_for_job(api.start_index(str(folder), release), seen, poll_s=0.2)
    if job["status"] != "succeeded":
        raise SystemExit(f"index job failed: {job['error']}")
    return dict(job["result"])


def by_stage(busy: Traffic, stages: list[tuple[float, str]]) -> dict[str, list[float]]:
    """The latencies of queries started during each stage the job reported ("read": the
    child's start and reading and chunking the release; "queued" before any report)."""
    groups: dict[str, list[float]] = {}
    for started, latency in zip(busy.started, busy.latencies, strict=True):
        stage = "queued"
        for at, name in stages:
            if at <= started:
                stage = name
        groups.setdefault(stage, []).append(latency)
    return groups


def measure_traffic(url: str, questions: list[str], seconds: float) -> Traffic:
    traffic = Traffic(url, questions)
    traffic.start()
    time.sleep(seconds)
    traffic.stop.set()
    traffic.join()
    return traffic


def bench_release_upgrade(questions: list[str], in_child: bool) -> None:
    """v2.20.15 served, v3.0.5 indexed through the admin API while a client queries."""
    data = Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    index = get_settings().index.model_copy(update={"embed_process": in_child})
    settings = Settings(
        data_dir=data,
        index_roots=[str(CORPORA)],
        vllm=VllmSettings(url="http://127.0.0.1:9"),
        rate_limit_per_minute=1_000_000,
        index=index,
    )
    where = (
        f"in a child process (nice +{index.embed_nice}, threads {index.embed_threads})"
        if in_child
        else "in the serving process (TANDEM_INDEX__EMBED_PROCESS=false)"
    )
    try:
        with served(settings) as (url, services):
            index_release(services.stores, services.embedder, CORPORA / OLD, OLD, "docs")
            idle = measure_traffic(url, questions, 15)
            traffic = Traffic(url, questions)
            stages: list[tuple[float, str]] = []
            traffic.start()
            result = run_job(url, CORPORA / NEW, NEW, stages)
            traffic.stop.set()
            traffic.join()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print_upgrade(result, idle, traffic, where, by_stage(traffic, stages))


def print_upgrade(
    result: dict[str, Any],
    idle: Traffic,
    busy: Traffic,
    where: str,
    stages: dict[str, list[float]],
) -> None:
    chunks, embedded, reused = result["chunks"], result["embedded"], result["reused"]
    summary = result["changes"]["summary"]
    print(f"\n## {OLD} -> {NEW} through the admin API, with queries running; job embeds {where}")
    print(
        f"- chunks {chunks}: embedded {embedded} ({100 * embedded / chunks:.1f} %), reused "
        f"{reused} ({100 * reused / chunks:.1f} %), removed {result['removed']}"
    )
    print(
        f"- pages added {summary['pages_added']}, changed {summary['pages_changed']}, removed "
        f"{summary['pages_removed']}, unchanged {summary['pages_unchanged']}"
    )
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items() if k != "total")
    print(f"- re-index time {result['seconds']['total']:.1f} s ({timing})")
    idle_p95, busy_p95 = percentile(idle.latencies, 95), percentile(busy.latencies, 95)
    print(
        f"- /v1/retrieve idle: {len(idle.latencies)} queries, p95 "
        f"{1000 * idle_p95:.0f} ms, failures {len(idle.failures)}"
    )
    print(
        f"- /v1/retrieve during the re-index: {len(busy.latencies)} queries, p95 "
        f"{1000 * busy_p95:.0f} ms ({busy_p95 / idle_p95:.1f}x idle), failures "
        f"{len(busy.failures)}"
    )
    print(
        "  by the job's stage at the query's start: "
        + ", ".join(
            f"{stage} {len(values)} queries p95 {1000 * percentile(values, 95):.0f} ms"
            for stage, values in stages.items()
        )
    )
    for failure in busy.failures[:5]:
        print(f"  - {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(EMBED_BACKENDS), help="'' skips them")
    parser.add_argument("--skip-upgrade", action="store_true")
    parser.add_argument(
        "--upgrade-modes",
        default="child,in-process",
        help="where the upgrade's job embeds, in order: child, in-process (comma-separated)",
    )
    args = parser.parse_args()
    qa = [item for item in load_qa(QA) if item.file]
    settings = get_settings()
    print(
        f"# bench_index ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"batch {settings.retrieval.embed_batch_size})"
    )
    rows = [bench_backend(backend, qa) for backend in args.backends.split(",") if backend]
    if rows:
        print_backends(rows)
    if not args.skip_upgrade:
        modes = args.upgrade_modes.split(",")
        if set(modes) - {"child", "in-process"}:
            parser.error(f"--upgrade-modes: child or in-process, not {args.upgrade_modes!r}")
        retrieval = settings.retrieval
        print(
            f"\n(upgrade runs on the {retrieval.embed_backend} backend, "
            "TANDEM_RETRIEVAL__EMBED_BACKEND; the app embeds queries as `tandem up` does: "
            f"{retrieval.embed_threads or 'all'} thread(s), static query shapes "
            f"{'/'.join(map(str, retrieval.query_tokens)) or 'off'}, "
            f"{query_weights_for_this_cpu(retrieval.query_weights)} weights; "
            "in-process jobs on every core)"
        )
        for mode in modes:
            bench_release_upgrade([item.question for item in qa], mode == "child")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
