"""What an embedder costs to start: the serving embedder and the index job's child process.

    .venv/bin/python bench/bench_embedder_start.py [--runs 3]

Each run is a fresh interpreter (the `tandem` it imports is whichever is first on the path:
set PYTHONPATH to another checkout's `services/orchestrator` to measure that one):
  serving  `build_embedder(Settings(), "queries")` and one query: seconds, peak RSS, and which of
           torch / transformers / triton it imported;
  child    an index job's `EmbedProcess` (spawned, niced) from start to its first batch back.
The ONNX export is cached by a first, unreported run. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

SERVING = """
import resource, sys, time
started = time.perf_counter()
from tandem.rag.embedder import build_embedder
from tandem.settings import Settings
build_embedder(Settings(), "queries").embed_query("How do I change the OCR language?")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
heavy = [m for m in ("torch", "transformers", "triton") if m in sys.modules]
print(f"serving embedder: {time.perf_counter() - started:.2f} s, peak RSS {rss:.0f} MiB, "
      f"imported {heavy or 'none of torch, transformers, triton'}")
"""

CHILD = """
import time
from tandem.indexing.embed_process import EmbedProcess, index_embedder_factory
from tandem.rag.embedder import build_embedder
from tandem.settings import Settings
if __name__ == "__main__":
    settings = Settings()
    serving = build_embedder(settings, "queries")
    started = time.perf_counter()
    child = EmbedProcess(index_embedder_factory(settings), serving)
    child.vectors(["a page"])
    print(f"index child: started to first batch back {time.perf_counter() - started:.2f} s")
    child.close()
"""


def run(code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run(SERVING)  # exports and caches the ONNX model if need be
    for _ in range(args.runs):
        print(run(SERVING), flush=True)
    for _ in range(args.runs):
        print(run(CHILD), flush=True)


if __name__ == "__main__":
    main()
