"""The grouped CPU LoRA kernels compute what vLLM's own PyTorch-native ops compute."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
import torch
from vllm.lora.ops import torch_ops

from tandem.vllm_cpu import cpu_lora

TOKENS, HIDDEN, RANK, OUT, SLOTS = 37, 64, 8, 96, 3
Kernel = Callable[..., None]


def _inputs(indices: list[int], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "x": torch.randn(len(indices), HIDDEN, dtype=dtype),
        "a": torch.randn(SLOTS, 1, RANK, HIDDEN, dtype=dtype),
        "h": torch.randn(len(indices), RANK, dtype=dtype),
        "b": torch.randn(SLOTS, 1, OUT, RANK, dtype=dtype),
        "y": torch.randn(len(indices), 2 * OUT, dtype=dtype),
        "idx": torch.tensor(indices, dtype=torch.long),
    }


INDEX_SETS = ([2], [1] * TOKENS, [0] * 20 + [2] * 10 + [-1] * 7, [2, 0, 2, 1, -1, 0])


def _both(
    call: Callable[[Kernel, dict[str, torch.Tensor]], torch.Tensor],
    name: str,
    index_sets: tuple[list[int], ...] = INDEX_SETS,
) -> None:
    """Same inputs through vLLM's kernel and ours: same outputs (bf16 within its precision)."""
    for indices in index_sets:
        for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 3e-2)):
            t = _inputs(indices, dtype)
            expected = call(getattr(torch_ops, name), {k: v.clone() for k, v in t.items()})
            got = call(getattr(cpu_lora, name), {k: v.clone() for k, v in t.items()})
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol * 10)


def test_bgmv_shrink_matches_vllm() -> None:
    def call(kernel: Kernel, t: dict[str, torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(len(t["idx"]), RANK, dtype=t["x"].dtype)
        kernel(t["x"], t["a"], out, t["idx"], 0.5)
        return out

    _both(call, "bgmv_shrink")


@pytest.mark.parametrize("add_inputs", [True, False])
def test_bgmv_expand_and_slice_match_vllm(add_inputs: bool) -> None:
    def expand(kernel: Kernel, t: dict[str, torch.Tensor]) -> torch.Tensor:
        kernel(t["h"], t["b"], t["y"], t["idx"], add_inputs)
        return t["y"]

    def expand_slice(kernel: Kernel, t: dict[str, torch.Tensor]) -> torch.Tensor:
        kernel(t["h"], t["b"], t["y"], t["idx"], OUT, OUT, add_inputs)
        return t["y"]

    _both(expand, "bgmv_expand")
    _both(expand_slice, "bgmv_expand_slice")


def test_sgmv_prefill_kernels_match_vllm() -> None:
    """Prefill: per-sequence adapter indices exploded over the sequence lengths."""
    seq_lens = torch.tensor([20, 10, 7])
    meta = (torch.tensor([0, 20, 30]), seq_lens, torch.tensor([0, 2, -1]), 3, 20, 37)

    def shrink(kernel: Kernel, t: dict[str, torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(TOKENS, RANK, dtype=t["x"].dtype)
        kernel(t["x"], t["a"], out, *meta, 2.0)
        return out

    def expand(kernel: Kernel, t: dict[str, torch.Tensor]) -> torch.Tensor:
        kernel(t["h"], t["b"], t["y"], *meta, True)
        return t["y"]

    def expand_slice(kernel: Kernel, t: dict[str, torch.Tensor]) -> torch.Tensor:
        kernel(t["h"], t["b"], t["y"], *meta, 0, OUT, True)
        return t["y"]

    tokens = ([0] * TOKENS,)  # only the length counts: sgmv takes its indices from `meta`
    _both(shrink, "sgmv_shrink", tokens)
    _both(expand, "sgmv_expand", tokens)
    _both(expand_slice, "sgmv_expand_slice", tokens)


def test_install_swaps_the_kernels_into_vllms_cpu_wrapper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = importlib.import_module(cpu_lora.PUNICA_CPU)
    for name in cpu_lora.KERNELS:  # restored after the test
        monkeypatch.setattr(module, name, getattr(module, name))
    assert module.sgmv_shrink is torch_ops.sgmv_shrink
    assert cpu_lora.install() is True
    for name, kernel in cpu_lora.KERNELS.items():
        assert getattr(module, name) is kernel


def test_install_keeps_vllms_kernels_when_a_signature_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = importlib.import_module(cpu_lora.PUNICA_CPU)
    for name in cpu_lora.KERNELS:
        monkeypatch.setattr(module, name, getattr(module, name))

    def sgmv_shrink(inputs: torch.Tensor, weights: torch.Tensor) -> None: ...

    monkeypatch.setattr(module, "sgmv_shrink", sgmv_shrink)
    assert cpu_lora.install() is False
    assert module.bgmv_shrink is torch_ops.bgmv_shrink
