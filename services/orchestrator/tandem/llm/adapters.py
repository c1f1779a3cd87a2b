"""The adapter registry: immutable version folders `adapters/<slot>/vN/` and the active pointer.

The active pointer lives in Qdrant's metadata collection so every orchestrator replica
reads the same one; without a pointer the newest version of the slot is active.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.errors import AdapterInvalid, NotFound
from tandem.rag.store import DocStore

VERSION_DIR = re.compile(r"^v(\d+)$")
SLOT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors")
POINTER_TTL_S = 1.0


@dataclass(frozen=True)
class AdapterVersion:
    slot: str
    version: str
    path: Path

    @property
    def served_name(self) -> str:
        """The name vLLM serves this version under (distinct per version)."""
        return f"{self.slot}-{self.version}"

    @property
    def label(self) -> str:
        return f"{self.slot}@{self.version}"

    def card(self) -> dict[str, Any]:
        card = self.path / "card.json"
        return json.loads(card.read_text()) if card.is_file() else {}


def version_number(version: str) -> int:
    match = VERSION_DIR.match(version)
    if not match:
        raise NotFound(f"{version!r} is not a version name like v1, v2")
    return int(match.group(1))


def validate_adapter_folder(path: Path, base_model: str, max_rank: int) -> dict[str, Any]:
    """Refuse anything vLLM should not load: missing files, pickles, wrong base, rank too high."""
    if not path.is_dir():
        raise AdapterInvalid(f"{path} is not a folder")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise AdapterInvalid(f"{path} lacks {', '.join(missing)}")
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl"})
    if pickles:
        raise AdapterInvalid(f"{path} holds pickle weights {pickles}; only safetensors are allowed")
    try:
        config = json.loads((path / "adapter_config.json").read_text())
    except ValueError as error:
        raise AdapterInvalid(f"{path}/adapter_config.json is not valid JSON: {error}") from error
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterInvalid(f"{path} is a {config.get('peft_type')} adapter, not LoRA")
    if config.get("base_model_name_or_path") != base_model:
        raise AdapterInvalid(
            f"{path} was trained on {config.get('base_model_name_or_path')!r}, "
            f"but the served base model is {base_model!r}"
        )
    rank = int(config.get("r", 0))
    if not 0 < rank <= max_rank:
        raise AdapterInvalid(f"{path} has LoRA rank {rank}; the server allows 1..{max_rank}")
    if config.get("modules_to_save"):
        raise AdapterInvalid(f"{path} sets modules_to_save, which vLLM cannot serve")
    return dict(config)


class AdapterRegistry:
    """Reads versions from the adapters folder and the active pointer from shared metadata."""

    def __init__(self, root: Path, store: DocStore) -> None:
        self.root = root
        self.store = store
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def slots(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, slot: str) -> list[AdapterVersion]:
        folder = self.root / slot
        if not SLOT_NAME.match(slot) or not folder.is_dir():
            return []
        found = [
            AdapterVersion(slot, p.name, p.resolve())
            for p in folder.iterdir()
            if p.is_dir() and VERSION_DIR.match(p.name) and (p / REQUIRED_FILES[0]).is_file()
        ]
        return sorted(found, key=lambda v: version_number(v.version))

    def get(self, slot: str, version: str) -> AdapterVersion:
        for candidate in self.versions(slot):
            if candidate.version == version:
                return candidate
        raise NotFound(f"adapter {slot}@{version} does not exist")

    def pointer(self, slot: str, fresh: bool = False) -> dict[str, Any]:
        """The slot's shared state: {"active": "v2", "history": [...], ...} (cached ~1 s)."""
        now = time.monotonic()
        cached = self._cache.get(slot)
        if cached and not fresh and now - cached[0] < POINTER_TTL_S:
            return cached[1]
        state = self.store.get_meta(f"adapter:{slot}") or {}
        self._cache[slot] = (now, state)
        return state

    def save_pointer(self, slot: str, state: dict[str, Any]) -> None:
        self.store.put_meta(f"adapter:{slot}", state)
        self._cache[slot] = (time.monotonic(), state)

    def active(self, slot: str) -> AdapterVersion:
        """The version that serves `slot` now."""
        versions = self.versions(slot)
        if not versions:
            raise NotFound(f"adapter slot {slot!r} has no versions in {self.root}")
        active = self.pointer(slot).get("active")
        return self.get(slot, active) if active else versions[-1]
