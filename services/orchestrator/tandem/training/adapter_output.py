"""What a training run writes: a staging folder, servable peft files and the card.

Version names, the files a version holds and the atomic publish live in
`tandem.adapters.versions`, shared with the registry that serves them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tandem.adapters.versions import CONFIG_FILE, REQUIRED_FILES
from tandem.errors import BadInput


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_dir(target: Path) -> Path:
    """A hidden sibling folder the run writes into; renamed to `target` only when complete.

    Partial folders of runs that were killed (their process is gone) are removed first.
    """
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def finalize_adapter(staging: Path, base_model_name: str) -> dict[str, Any]:
    """Make the peft output servable: served base name, safetensors only, readable files.

    Whether vLLM can serve the result (no modules_to_save, rank, shapes) is checked after,
    by the same `validate_adapter_folder` the registry runs.
    """
    config_path = staging / CONFIG_FILE
    config: dict[str, Any] = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_model_name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for path in staging.iterdir():  # peft also writes a model card; ours replaces it
        if path.name not in REQUIRED_FILES:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    missing = set(REQUIRED_FILES) - {p.name for p in staging.iterdir()}
    if missing:
        raise BadInput(f"the adapter was not saved as safetensors (missing {sorted(missing)})")
    for name in REQUIRED_FILES:  # safetensors writes 0600; a vLLM under another user must read it
        (staging / name).chmod(0o644)
    return config


def write_card(staging: Path, card: dict[str, Any]) -> None:
    """`card.json` (read by the adapter registry) and a README.md a person reads."""
    (staging / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (staging / "README.md").write_text(render_readme(card))


def render_readme(card: dict[str, Any]) -> str:
    metrics = card["metrics"]
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    data = "\n".join(
        f"- {split}: `{d['file']}` — {d['examples']} examples used "
        f"({d['too_long']} longer than max_len left out), sha256 `{d['sha256']}`"
        for split, d in card["datasets"].items()
    )
    recipe = "\n".join(f"{k}: {json.dumps(v)}" for k, v in card["recipe"].items())
    return (
        f"# {card['slot']} {card['version']} (served as `{card['served_name']}`)\n\n"
        f"{card['recipe'].get('description') or 'A LoRA adapter for the house answer format.'}"
        f"\n\n- base model: `{card['base_model']['name']}` "
        f"(GGUF sha256 `{card['base_model']['hash']}`)\n"
        f"- trained: {card['created']} with seed {card['seed']}, "
        f"LoRA r={card['lora']['r']} alpha={card['lora']['alpha']} on "
        f"{', '.join(card['lora']['target_modules'])}\n\n"
        f"## Data\n\n{data}\n\n## Metrics\n\n| metric | value |\n| --- | --- |\n{rows}\n\n"
        f"## Recipe\n\n```yaml\n{recipe}\n```\n\n"
        "Files: `adapter_model.safetensors`, `adapter_config.json` (peft), `card.json`. "
        "This folder is immutable; train a new version instead of editing it.\n"
    )
