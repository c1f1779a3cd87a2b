"""What a rate limit shared by every replica costs a request, against a per-replica one.

    .venv/bin/python bench/bench_rate_limit.py [-n 400] [--keys 20] [--per-key 100]

The two choices for N orchestrator replicas (issue 32): `rate / replicas` in each process
(the token bucket, no I/O) or one fixed-window count in the shared store (one point written
and one filtered count per request: `SharedRateLimiter` over `QdrantHitCounter`). Times per
request, the median of `-n` checks:
  bucket        the in-process token bucket (`RateLimiter.check`)
  window/memory the shared window's own logic, over the in-memory counter
  window/local  the shared window over qdrant-client's local mode (what the tests run), the
                window already holding `--keys` x `--per-key` hits: local mode filters in
                Python, so its count scans every point of the collection
  window/engine the same two operations (write a hit point, count the key's window with
                payload indexes on `key` and `window`) on Qdrant's own Rust engine in-process
                (qdrant-edge, the engine a server shard runs; WAL on this disk), same hits:
                the server's work for one request, without the network
  round trip    one loopback HTTP round trip (httpx to a minimal uvicorn app): the floor
                of each of the two calls a Qdrant server answers; no server binary runs here
  embed query   the serving embedder on one question: the cheapest stage every chat with
                retrieval already pays (before vLLM's generation, which costs far more)
Prints each, and the ratios that decide: the shared count's estimated server cost (two
round trips plus the engine's work) against the bucket and against embedding the query.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qdrant_client import QdrantClient  # noqa: E402
from qdrant_edge import (  # noqa: E402
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    MatchValue,
    PayloadSchemaType,
    Point,
    UpdateOperation,
)

from bench_foundation import free_port  # noqa: E402
from tandem.api.rate_limit import RateLimiter, SharedRateLimiter  # noqa: E402
from tandem.rag.embedder import build_embedder  # noqa: E402
from tandem.settings import Settings  # noqa: E402
from tandem.stores.qdrant_records import QdrantHitCounter  # noqa: E402
from tandem.stores.rate_windows import MemoryHitCounter  # noqa: E402

BIG = 10**9  # a limit never reached: every check does its full work


def median_us(action: Callable[[int], object], n: int) -> float:
    """The median time of `action(i)` for i in range(n), in microseconds."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def _echo(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
    """A minimal ASGI app: reads the body, answers a small JSON (as Qdrant's upsert does)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    body = b'{"result":{"operation_id":1,"status":"completed"},"status":"ok","time":0.0001}'
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def round_trip_us(n: int) -> float:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_echo, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    point = {"points": [{"id": "6f1c3a52-8d0e-4c59-9a43-2f6d4b1e7a10", "vector": {},
                         "payload": {"key": "0" * 32, "window": 29_000_000}}]}  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            client.put("/collections/tandem_rate_hits/points", json=point)  # connect once
            return median_us(lambda _: client.put("/collections/x/points", json=point), n)
    finally:
        server.should_exit = True
        thread.join()


class EngineHitCounter:
    """`QdrantHitCounter`'s two operations on Qdrant's engine in-process (a server's shard)."""

    def __init__(self, folder: str) -> None:
        config = EdgeConfig(vectors={"unused": EdgeVectorParams(size=1, distance=Distance.Dot)})
        self.shard = EdgeShard.create(folder, config)
        self.shard.update(UpdateOperation.create_field_index("key", PayloadSchemaType.Keyword))
        self.shard.update(UpdateOperation.create_field_index("window", PayloadSchemaType.Integer))

    def hit(self, key: str, window: int) -> int:
        point = Point(str(uuid.uuid4()), {}, {"key": key, "window": window})
        self.shard.update(UpdateOperation.upsert_points([point]))
        this_window = Filter(
            must=[FieldCondition("key", match=MatchValue(key)),
                  FieldCondition("window", match=MatchValue(window))]
        )  # fmt: skip
        return int(self.shard.count(CountRequest(exact=True, filter=this_window)))


def window_us(
    counter: QdrantHitCounter | EngineHitCounter, n: int, keys: int, per_key: int
) -> float:
    """The shared window's check over `counter`, its window holding keys x per_key hits."""
    window = int(time.time() // 60)
    for k in range(keys):
        for _ in range(per_key):
            counter.hit(f"key-{k:02d}".ljust(32, "0"), window)
    limiter = SharedRateLimiter(BIG, counter)
    return median_us(lambda i: limiter.check(f"client-{i % keys}"), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=400, help="checks timed per variant")
    parser.add_argument("--keys", type=int, default=20, help="keys with hits in the window")
    parser.add_argument("--per-key", type=int, default=100, help="hits per key already counted")
    args = parser.parse_args()

    local, folder = QdrantClient(":memory:"), tempfile.mkdtemp(prefix="bench-rate-")
    bucket = RateLimiter(BIG)
    memory = SharedRateLimiter(BIG, MemoryHitCounter())
    embedder = build_embedder(Settings(), "queries")
    question = "How do I change the OCR language of documents I already uploaded?"
    embedder.embed_query(question)  # compiled and warm before timing
    figures = {
        "bucket": median_us(lambda i: bucket.check(f"client-{i % args.keys}"), args.n),
        "window/memory": median_us(lambda i: memory.check(f"client-{i % args.keys}"), args.n),
        "window/local": window_us(QdrantHitCounter(local), args.n, args.keys, args.per_key),
        "window/engine": window_us(
            EngineHitCounter(f"{folder}/hits"), args.n, args.keys, args.per_key
        ),
        "round trip": round_trip_us(args.n),
        "embed query": median_us(lambda _: embedder.embed_query(question), max(args.n // 8, 20)),
    }
    local.close()
    shutil.rmtree(folder)
    hits = args.keys * args.per_key
    print(f"per request, median of {args.n} (the shared windows held {hits} hits)")
    for name, us in figures.items():
        print(f"  {name:14} {us:10.1f} µs")
    server = 2 * figures["round trip"] + figures["window/engine"]
    print(f"shared window on a Qdrant server, estimated (2 round trips + the engine's work): "
          f"{server:.0f} µs")  # fmt: skip
    print(f"  / bucket      {server / figures['bucket']:10.0f}x")
    print(f"  / embed query {server / figures['embed query']:10.2f}x")


if __name__ == "__main__":
    main()
