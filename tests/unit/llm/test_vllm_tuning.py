"""Tandem's adjustments inside vLLM's processes, on the installed vLLM's own classes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tandem.vllm_cpu.tuning import apply, limit_busy_wait, rewindable_cpu_generator


def _in_a_fresh_interpreter(code: str, **env: str) -> str:
    """Run `code` where the kernels cannot leak into this process (test_cpu_lora compares)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def spin_condition() -> Iterator[Any]:
    """vLLM's SpinCondition, with its own constructor back after the test."""
    from vllm.distributed.device_communicators import shm_broadcast

    original = shm_broadcast.SpinCondition.__init__
    yield shm_broadcast.SpinCondition
    shm_broadcast.SpinCondition.__init__ = original  # type: ignore[method-assign]


def test_readers_poll_for_the_set_window(spin_condition: Any) -> None:
    import zmq
    from vllm.utils.network_utils import get_open_zmq_inproc_path

    assert limit_busy_wait(2.5)
    context = zmq.Context()
    try:
        address = get_open_zmq_inproc_path()
        writer = spin_condition(is_reader=False, context=context, notify_address=address)
        reader = spin_condition(is_reader=True, context=context, notify_address=address)
        kept = spin_condition(True, context, address, busy_loop_s=3)  # explicit: honoured
        assert (reader.busy_loop_s, kept.busy_loop_s, writer.busy_loop_s) == (0.0025, 3, 0)
    finally:
        context.destroy(linger=0)


def test_the_entry_applies_what_the_environment_asks_for() -> None:
    out = _in_a_fresh_interpreter(
        """
        from tandem.vllm_cpu.tuning import apply
        print(apply())
        """,
        TANDEM_VLLM_LORA_KERNEL="grouped",
        TANDEM_VLLM_BUSY_WAIT_MS="2",
    )
    assert out == (
        "['rewindable seeded CPU generators', 'grouped CPU LoRA kernels', 'busy wait 2 ms']"
    )
    # vLLM's API server (not a child) with neither asked for: nothing to patch, so it runs here
    none = {"TANDEM_VLLM_LORA_KERNEL": "vllm", "TANDEM_VLLM_BUSY_WAIT_MS": ""}
    assert apply(none, child=False) == []


def test_the_rewind_undoes_the_draws_since_the_mark() -> None:
    import torch

    source = torch.Generator(device="cpu").manual_seed(1234)
    with pytest.raises(RuntimeError, match="does not use offset"):  # why the fix exists
        source.set_offset(source.get_offset() - 4)
    generator = rewindable_cpu_generator(source)
    first = torch.empty(8).exponential_(generator=generator)  # a step's sample
    generator.set_offset(generator.get_offset() - 4)  # vLLM's rewind of a discarded sample
    again = torch.empty(8).exponential_(generator=generator)
    assert torch.equal(first, again)  # as if the discarded token was never drawn
    generator.mark()  # a step kept: the next rewind goes back to here, not further
    later = torch.empty(8).exponential_(generator=generator)
    assert not torch.equal(later, first)
    generator.set_offset(0)
    assert torch.equal(torch.empty(8).exponential_(generator=generator), later)
    # the copy starts where the source was
    fresh = torch.Generator(device="cpu").manual_seed(1234)
    assert torch.equal(torch.empty(8).exponential_(generator=fresh), first)


def test_seeded_cpu_requests_get_rewindable_generators_and_marks() -> None:
    out = _in_a_fresh_interpreter(
        """
        import torch
        from types import SimpleNamespace
        from vllm.v1.worker import gpu_input_batch, gpu_model_runner
        calls = []
        gpu_input_batch.InputBatch.add_request = lambda self, request: calls.append(request)
        gpu_model_runner.GPUModelRunner.sample_tokens = lambda self, *a: "kept"
        from tandem.vllm_cpu.tuning import rewindable_seeds
        print(rewindable_seeds())
        request = SimpleNamespace(generator=torch.Generator(device="cpu").manual_seed(7))
        gpu_input_batch.InputBatch.add_request(None, request)
        generator = calls[0].generator
        print(type(generator).__name__)
        torch.rand(4, generator=generator)
        runner = SimpleNamespace(input_batch=SimpleNamespace(generators={0: generator}))
        print(gpu_model_runner.GPUModelRunner.sample_tokens(runner, "step"))
        after_step = torch.rand(4, generator=generator)
        generator.set_offset(generator.get_offset() - 4)
        print(torch.equal(torch.rand(4, generator=generator), after_step))
        unseeded = SimpleNamespace(generator=None)
        gpu_input_batch.InputBatch.add_request(None, unseeded)
        print(calls[1].generator)
        """
    )
    assert out.splitlines() == ["True", "RewindableCpuGenerator", "kept", "True", "None"]


def test_a_negative_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="0 ms or more"):
        limit_busy_wait(-1)
