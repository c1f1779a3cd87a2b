"""Cross-encoder latency on both runtimes, and spaCy's time per 60-word sentence.

    .venv/bin/python bench/bench_cross_encoder.py [--threads 2] [--runs 50]

Scores 4 and 8 (query, passage) pairs in one batch with `CrossEncoder` on ONNX Runtime and
on OpenVINO, on `--threads` compute threads, the two runtimes taking turns. The passages are
200-word windows of the sample corpus (corpus/), so every pair is cut at the 256-token
default. Then parses 60-word sentences with `load_parser()`. Needs `tandem model prepare`
(the cross-encoder under TANDEM_MODELS_DIR). Prints p50/p95 in ms, and the CPU time a call
took over all threads (less swayed by a busy neighbour than wall time); asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit

from bench._kit import ROOT, percentile  # noqa: E402

from tandem.rag.cross_encoder import CrossEncoder, Runtime  # noqa: E402
from tandem.rag.cross_encoder_prep import cross_encoder_path  # noqa: E402
from tandem.rag.parser import load_parser  # noqa: E402
from tandem.settings import get_settings, newest_release  # noqa: E402

QUERY = "How do I export all my invoices to a CSV file every month?"


def corpus_words() -> list[str]:
    """Every word of the newest sample release, in a fixed order."""
    release = newest_release(ROOT / "corpus")
    return [w for f in sorted(release.rglob("*.md")) for w in f.read_text().split()]


def windows(words: list[str], size: int, count: int) -> list[str]:
    """`count` texts of `size` consecutive words, spread over `words`."""
    step = max(1, (len(words) - size) // count)
    return [" ".join(words[i * step : i * step + size]) for i in range(count)]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of `samples`."""
    return percentile(samples, 50), percentile(samples, 95)


def timings_ms(call: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p95 of `call` in ms, after two warm-up calls."""
    for _ in range(2):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def bench_cross_encoder(threads: int, runs: int, words: list[str]) -> None:
    folder = cross_encoder_path(get_settings().models_dir)
    passages = windows(words, 200, 8)
    encoders = [CrossEncoder(folder, threads=threads, runtime=r) for r in get_args(Runtime)]
    for pairs in (4, 8):
        batch = passages[:pairs]
        samples: dict[str, list[float]] = {e.runtime: [] for e in encoders}
        cpu = dict.fromkeys(samples, 0.0)
        for _ in range(2):  # warm-up
            for encoder in encoders:
                encoder.score(QUERY, batch)
        # the runtimes take turns, so a neighbour's load on a shared machine hits both alike
        for _ in range(runs):
            for encoder in encoders:
                started, cpu_started = time.perf_counter(), time.process_time()
                encoder.score(QUERY, batch)
                samples[encoder.runtime].append((time.perf_counter() - started) * 1000)
                cpu[encoder.runtime] += (time.process_time() - cpu_started) * 1000 / runs
        for runtime, taken in samples.items():
            p50, p95 = percentiles(taken)
            print(
                f"cross-encoder {runtime:<11} {pairs} pairs x 256 tokens, {threads} threads: "
                f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (CPU {cpu[runtime]:6.1f} ms a call)"
            )


def bench_parser(runs: int, words: list[str]) -> None:
    nlp = load_parser()
    sentences = windows(words, 60, runs)
    started = time.perf_counter()
    for sentence in sentences:
        nlp(sentence)
    per = (time.perf_counter() - started) * 1000 / len(sentences)
    p50, p95 = timings_ms(lambda: nlp(sentences[0]), runs)
    print(f"spaCy {nlp.meta['name']} {nlp.meta['version']} {nlp.pipe_names}")
    print(f"spaCy 60-word sentence: mean {per:.1f} ms over {len(sentences)} sentences; ", end="")
    print(f"one sentence p50 {p50:.1f} ms  p95 {p95:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    words = corpus_words()
    bench_cross_encoder(args.threads, args.runs, words)
    bench_parser(args.runs, words)


if __name__ == "__main__":
    main()
