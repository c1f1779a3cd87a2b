"""Tandem's adjustments inside vLLM's processes, on the installed vLLM's own classes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tandem.llm.vllm_tuning import apply, limit_busy_wait


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
        from tandem.llm.vllm_tuning import apply
        print(apply())
        """,
        TANDEM_VLLM_LORA_KERNEL="grouped",
        TANDEM_VLLM_BUSY_WAIT_MS="2",
    )
    assert out == "['grouped CPU LoRA kernels', 'busy wait 2 ms']"
    # neither asked for: nothing to patch, so this one can run here
    assert apply({"TANDEM_VLLM_LORA_KERNEL": "vllm", "TANDEM_VLLM_BUSY_WAIT_MS": ""}) == []


def test_a_negative_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="0 ms or more"):
        limit_busy_wait(-1)
