"""Real adapter versions for the swap tests and bench: the project's trained ones when present,
else two tiny ones trained here (peft LoRA r=8 on q_proj/v_proj, a few steps on the base model).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from tandem.errors import TandemError
from tandem.llm.adapters import validate_adapter_folder
from tandem.settings import PROJECT_ROOT, Settings, get_settings

SLOT = "support"
EXAMPLES = [
    ("How do I export my data?", "Open Settings > Export and pick CSV.\nSources: [1]"),
    ("How do I reset my password?", "Use the Forgot password link.\nSources: [1]"),
]
_cache: Path | None = None


def train_tiny_adapter(out: Path, seed: int, steps: int = 3) -> Path:
    """A real (if barely trained) LoRA adapter saved as safetensors into `out`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = get_settings()
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(settings.model_path)
    base = AutoModelForCausalLM.from_pretrained(settings.model_path, torch_dtype=torch.float32)
    lora = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    question, answer = EXAMPLES[seed % len(EXAMPLES)]
    chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    batch = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False), return_tensors="pt")
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-3)
    for _ in range(steps):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out, safe_serialization=True)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = settings.model.name  # the served name, not the path
    config_path.write_text(json.dumps(config, indent=2))
    (out / "README.md").unlink(missing_ok=True)
    return out


def _project_versions(settings: Settings) -> list[Path] | None:
    """adapters/support/v1 and v2 when both are trained and valid."""
    folders = [PROJECT_ROOT / "adapters" / SLOT / v for v in ("v1", "v2")]
    try:
        for folder in folders:
            validate_adapter_folder(folder, settings.model.name, settings.vllm.max_lora_rank)
    except TandemError:
        return None
    return folders


def adapter_versions() -> Path:
    """A cached adapters root holding `support/v1` and `support/v2` (built once a process)."""
    global _cache
    if _cache is None:
        root = Path(tempfile.mkdtemp(prefix="tandem-adapters-"))
        (root / SLOT).mkdir()
        project = _project_versions(get_settings())
        for n in (1, 2):
            target = root / SLOT / f"v{n}"
            if project:
                shutil.copytree(project[n - 1], target)
            else:
                train_tiny_adapter(target, seed=n)
        _cache = root
    return _cache


def copy_adapters(dest: Path) -> Path:
    """A fresh, writable adapters root with v1 and v2 (tests add broken versions to it)."""
    shutil.copytree(adapter_versions(), dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest
