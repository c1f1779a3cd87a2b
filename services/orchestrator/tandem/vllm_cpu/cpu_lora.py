"""Grouped LoRA kernels for vLLM's CPU backend (the cost of an adapter on CPU, issue 13).

vLLM's PyTorch-native punica ops (`vllm.lora.ops.torch_ops`, what its CPU backend uses)
gather a copy of the adapter's A/B matrices for every token (`weights[indices]`) and run a
batched mat-vec per token: for a 550-token prompt that materialises 550 copies of each
matrix in every layer, which is why a LoRA request prefilled ~4.6x slower than the base
model, and its einsum over the gathered copies made every decode step ~2x slower too. The
same arithmetic, grouped by adapter, is one matrix product per adapter in the batch
(`x[rows] @ W.T`), so an adapter costs about what its rank says (~2x16/576 of the layer).

These functions keep vLLM's signatures and semantics (index -1 selects the last slot, as
`weights[-1]` does there); `install()` swaps them into vLLM's CPU punica wrapper, checking
first that vLLM's functions still have the signatures these were written against.
"""

from __future__ import annotations

import inspect
import logging

import torch

log = logging.getLogger("tandem.cpu_lora")
PUNICA_CPU = "vllm.lora.punica_wrapper.punica_cpu"
# Decode steps (a few tokens) multiply in float32: a bf16 matmul this small costs ~2x more
# on CPU than converting to float32 first; prefill chunks stay in the model's dtype.
FLOAT32_UP_TO = 16


def grouped_products(
    inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Row i of the result is `inputs[i] @ weights[indices[i]].T`, one matmul per adapter."""
    if weights.dim() == 4:
        weights = weights.squeeze(dim=1)
    compute = torch.float32 if inputs.shape[0] <= FLOAT32_UP_TO else dtype
    inputs = inputs.to(dtype=compute)
    first = int(indices[0]) if indices.numel() else 0
    if bool((indices == first).all()):  # the usual batch: every token on one adapter
        return (inputs @ weights[first].to(dtype=compute).t()).to(dtype=dtype)
    outputs = inputs.new_empty((inputs.shape[0], weights.shape[1]))
    for index in torch.unique(indices).tolist():
        rows = indices == index
        outputs[rows] = inputs[rows] @ weights[index].to(dtype=compute).t()
    return outputs.to(dtype=dtype)


def bgmv_shrink(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    scaling: float = 1.0,
) -> None:
    outputs = grouped_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    add_inputs: bool = True,
) -> None:
    outputs = grouped_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    common_len = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common_len] += outputs[:limit, :common_len]
    else:
        output_tensor[:, :common_len] = outputs[:limit, :common_len]


def bgmv_expand_slice(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    slice_offset: int,
    slice_size: int,
    add_inputs: bool = True,
) -> None:
    outputs = grouped_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def _per_token(lora_indices_tensor: torch.Tensor, seq_len_tensor: torch.Tensor) -> torch.Tensor:
    return torch.repeat_interleave(lora_indices_tensor, seq_len_tensor)


def sgmv_shrink(
    inputs: torch.Tensor,
    lora_a_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    b_seq_start_loc: torch.Tensor,
    seq_len_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    batches: int,
    max_seq_length: int,
    token_nums: int,
    scaling: float,
) -> None:
    indices = _per_token(lora_indices_tensor, seq_len_tensor)
    bgmv_shrink(inputs, lora_a_weights, output_tensor, indices, scaling)


def sgmv_expand(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    b_seq_start_loc: torch.Tensor,
    seq_len_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    batches: int,
    max_seq_length: int,
    token_nums: int,
    add_inputs: bool = False,
) -> None:
    indices = _per_token(lora_indices_tensor, seq_len_tensor)
    bgmv_expand(inputs, lora_b_weights, output_tensor, indices, add_inputs)


def sgmv_expand_slice(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    b_seq_start_loc: torch.Tensor,
    seq_len_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    batches: int,
    max_seq_length: int,
    token_nums: int,
    slice_offset: int,
    slice_size: int,
    add_inputs: bool = False,
) -> None:
    indices = _per_token(lora_indices_tensor, seq_len_tensor)
    bgmv_expand_slice(
        inputs, lora_b_weights, output_tensor, indices, slice_offset, slice_size, add_inputs
    )


KERNELS = {
    "bgmv_shrink": bgmv_shrink,
    "bgmv_expand": bgmv_expand,
    "bgmv_expand_slice": bgmv_expand_slice,
    "sgmv_shrink": sgmv_shrink,
    "sgmv_expand": sgmv_expand,
    "sgmv_expand_slice": sgmv_expand_slice,
}


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def install() -> bool:
    """Use the grouped kernels in vLLM's CPU punica wrapper; False (vLLM's own) on a mismatch."""
    import importlib

    module = importlib.import_module(PUNICA_CPU)
    for name, replacement in KERNELS.items():
        original = getattr(module, name, None)
        if original is None or _parameters(original) != _parameters(replacement):
            log.warning("vLLM's %s changed; keeping vLLM's CPU LoRA kernels", name)
            return False
    for name, replacement in KERNELS.items():
        setattr(module, name, replacement)
    return True
