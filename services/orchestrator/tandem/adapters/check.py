"""What makes an adapter folder safe to serve, checked before vLLM ever sees it.

vLLM's runtime loader takes any path, reads pickled `.bin` weights, never compares the base
model and only fails on a too-high rank deep inside the engine; these checks refuse such
folders up front with a message a person can act on.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from tandem.adapters.versions import CONFIG_FILE, REQUIRED_FILES, WEIGHTS_FILE
from tandem.errors import AdapterInvalid

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}
WEIGHT_DTYPES = {"F32", "F16", "BF16"}
MAX_HEADER_BYTES = 16 * 1024 * 1024
LAYER_MODULE = re.compile(r"layers\.(\d+)\..*?(\w+_proj)\.lora_(A|B)\b")


def validate_adapter_folder(
    path: Path, base_model: str, max_rank: int, model_dir: Path | None = None
) -> dict[str, Any]:
    """Refuse anything vLLM should not load: missing files, pickles, wrong base, rank too high.

    With `model_dir` (the prepared base model, when this machine has it) the tensor shapes
    are also checked against the base model's layers: vLLM pads or slices LoRA weights of
    the wrong width without a word, so an adapter for another model would load and serve.
    """
    _check_files(path)
    config = _read_config(path)
    _check_config(path, config, base_model, max_rank)
    header = read_safetensors_header(path / WEIGHTS_FILE)
    _check_weights(path / WEIGHTS_FILE, header, _allowed_ranks(path, config, max_rank))
    if model_dir is not None and (model_dir / "config.json").is_file():
        base_config = json.loads((model_dir / "config.json").read_text())
        check_base_shapes(path / WEIGHTS_FILE, header, base_config)
    return config


def _check_files(path: Path) -> None:
    if not path.is_dir():
        raise AdapterInvalid(f"{path} is not a folder")
    links = sorted(p.name for p in path.iterdir() if p.is_symlink())
    if links:
        raise AdapterInvalid(f"{path} holds symbolic links {links}; copy the real files in")
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterInvalid(f"{path} holds pickle weights {pickles}; only safetensors are allowed")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise AdapterInvalid(f"{path} lacks {', '.join(missing)}")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise AdapterInvalid(f"{path}/{CONFIG_FILE} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise AdapterInvalid(f"{path}/{CONFIG_FILE} must hold a JSON object")
    return config


def _check_config(path: Path, config: dict[str, Any], base_model: str, max_rank: int) -> None:
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterInvalid(f"{path} is a {config.get('peft_type')} adapter, not LoRA")
    if config.get("base_model_name_or_path") != base_model:
        raise AdapterInvalid(
            f"{path} was trained on {config.get('base_model_name_or_path')!r}, "
            f"but the served base model is {base_model!r}"
        )
    rank = config.get("r")
    if not isinstance(rank, int) or not 0 < rank <= max_rank:
        raise AdapterInvalid(f"{path} has LoRA rank {rank!r}; the server allows 1..{max_rank}")
    alpha = config.get("lora_alpha")
    if not isinstance(alpha, int | float) or alpha <= 0:
        raise AdapterInvalid(f"{path} has lora_alpha {alpha!r}; it must be a positive number")
    targets = config.get("target_modules")
    if not targets or not isinstance(targets, str | list):
        raise AdapterInvalid(f"{path} names no target_modules")
    if config.get("modules_to_save"):
        raise AdapterInvalid(f"{path} sets modules_to_save, which vLLM cannot serve")
    if config.get("use_dora"):
        raise AdapterInvalid(f"{path} is a DoRA adapter, which vLLM cannot serve")
    if config.get("bias", "none") != "none":
        raise AdapterInvalid(f"{path} trains biases (bias={config.get('bias')!r}); use 'none'")


def _allowed_ranks(path: Path, config: dict[str, Any], max_rank: int) -> set[int]:
    """The configured rank plus any per-module ranks (`rank_pattern`), each within the limit."""
    pattern = config.get("rank_pattern") or {}
    if not isinstance(pattern, dict) or not all(isinstance(r, int) for r in pattern.values()):
        raise AdapterInvalid(f"{path} has a malformed rank_pattern")
    ranks = {int(config["r"]), *pattern.values()}
    if max(ranks) > max_rank:
        raise AdapterInvalid(f"{path} has LoRA rank {max(ranks)}; the server allows 1..{max_rank}")
    return ranks


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes), without torch."""
    try:
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if not 0 < size <= MAX_HEADER_BYTES:
                raise ValueError(f"header size {size} is implausible")
            header = json.loads(handle.read(size))
    except (OSError, ValueError, struct.error) as error:
        raise AdapterInvalid(f"{path} is not a readable safetensors file: {error}") from error
    if not isinstance(header, dict):
        raise AdapterInvalid(f"{path} has a malformed safetensors header")
    header.pop("__metadata__", None)
    return header


def _check_weights(path: Path, header: dict[str, Any], ranks: set[int]) -> None:
    """The tensors are LoRA A/B pairs whose rank dimension is one the config allows."""
    if not header:
        raise AdapterInvalid(f"{path} holds no tensors")
    for name, info in header.items():
        shape, dtype = info.get("shape") or [], info.get("dtype")
        if dtype not in WEIGHT_DTYPES:
            raise AdapterInvalid(f"{path}: tensor {name} has dtype {dtype}")
        if "lora_A" not in name and "lora_B" not in name:
            raise AdapterInvalid(f"{path}: {name} is not a LoRA weight (modules_to_save?)")
        rank_axis = 0 if "lora_A" in name else 1
        if len(shape) != 2 or shape[rank_axis] not in ranks:
            raise AdapterInvalid(
                f"{path}: {name} has shape {shape}, which does not match rank {sorted(ranks)}"
            )


def module_dims(base_config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in, out) features of the usual decoder projections, from a HF model config."""
    hidden, heads = int(base_config["hidden_size"]), int(base_config["num_attention_heads"])
    kv_heads = int(base_config.get("num_key_value_heads") or heads)
    head_dim = int(base_config.get("head_dim") or hidden // heads)
    dims = {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
    }
    if inter := base_config.get("intermediate_size"):
        mlp = {"gate_proj": (hidden, inter), "up_proj": (hidden, inter)}
        dims |= {**mlp, "down_proj": (inter, hidden)}
    return dims


def check_base_shapes(path: Path, header: dict[str, Any], base_config: dict[str, Any]) -> None:
    """Every LoRA tensor fits the base model: layer index and in/out features."""
    dims = module_dims(base_config)
    layers = int(base_config.get("num_hidden_layers", 0))
    for name, info in header.items():
        match = LAYER_MODULE.search(name)
        if match is None:
            continue
        layer, module, kind = int(match.group(1)), match.group(2), match.group(3)
        if layers and layer >= layers:
            raise AdapterInvalid(f"{path}: {name} is for layer {layer}; the base has {layers}")
        if module not in dims:
            continue
        shape, (fan_in, fan_out) = info.get("shape") or [], dims[module]
        expected = shape[1] == fan_in if kind == "A" else shape[0] == fan_out
        if not expected:
            raise AdapterInvalid(
                f"{path}: {name} has shape {shape}, which does not fit the base model's "
                f"{module} ({fan_in} -> {fan_out}); was it trained for another model?"
            )
