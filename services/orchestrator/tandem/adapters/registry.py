"""The adapter registry: immutable version folders `adapters/<slot>/vN/` and the active pointer.

The pointer lives in the shared state store so every orchestrator replica reads the
same one. It holds the active version, an optional canary, the version to roll back to and
the history. A slot nobody has activated yet serves its newest version; the background check
pins that choice in the pointer, so registering a newer version never changes what serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.adapters.check import validate_adapter_folder
from tandem.adapters.versions import (
    CONFIG_FILE,
    OPTIONAL_FILES,
    REQUIRED_FILES,
    SLOT_NAME,
    VERSION,
    publish_next,
    served_name,
    version_number,
)
from tandem.errors import BadInput, NotFound
from tandem.stores.state import SlotPointer, StateStore, release_held_adapters

__all__ = [
    "AdapterRegistry",
    "AdapterVersion",
    "in_canary",
    "register_version",
]

POINTER_TTL_S = 1.0
LISTING_TTL_S = 1.0  # a folder's mtime ticks coarsely: list it again at least this often
HISTORY_KEPT = 50


@dataclass(frozen=True)
class AdapterVersion:
    slot: str
    version: str
    path: Path

    @property
    def served_name(self) -> str:
        """The name vLLM serves this version under (distinct per version)."""
        return served_name(self.slot, self.version)

    @property
    def label(self) -> str:
        return f"{self.slot}@{self.version}"

    def card(self) -> dict[str, Any]:
        card = self.path / "card.json"
        return json.loads(card.read_text()) if card.is_file() else {}


def in_canary(sticky_key: str, slot: str, canary_version: str, percent: int) -> bool:
    """Whether a conversation belongs to the canary share (stable for the same key)."""
    digest = hashlib.sha256(f"{slot}:{canary_version}:{sticky_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


class AdapterRegistry:
    """Reads versions from the adapters folder and the active pointer from the shared state."""

    def __init__(self, root: Path, state: StateStore) -> None:
        self.root = root
        self.state = state
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._listed: dict[str, tuple[float, tuple[int, int], list[AdapterVersion]]] = {}

    def slots(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, slot: str, fresh: bool = False) -> list[AdapterVersion]:
        """The slot's versions, oldest first.

        Every chat asks, so the folder is listed again only when it changed (one `stat`) or
        its listing is over ~1 s old; versions are immutable folders published by rename.
        """
        folder = self.root / slot
        try:
            found = folder.stat() if SLOT_NAME.match(slot) else None
        except OSError:
            found = None
        if found is None or not stat.S_ISDIR(found.st_mode):
            return []
        key, now = (found.st_ino, found.st_mtime_ns), time.monotonic()
        listed = self._listed.get(slot)
        if fresh or not listed or listed[1] != key or now - listed[0] >= LISTING_TTL_S:
            listed = (now, key, _list_versions(folder, slot))
            self._listed[slot] = listed
        return list(listed[2])

    def get(self, slot: str, version: str) -> AdapterVersion:
        """One version; a miss lists the folder again (it may have just been registered)."""
        for fresh in (False, True):
            for candidate in self.versions(slot, fresh):
                if candidate.version == version:
                    return candidate
        raise NotFound(f"adapter {slot}@{version} does not exist in {self.root}")

    def pointer(self, slot: str, fresh: bool = False) -> dict[str, Any]:
        """The slot's shared state: {"active", "canary", "previous", "history"} (cached ~1 s)."""
        now = time.monotonic()
        cached = self._cache.get(slot)
        if cached and not fresh and now - cached[0] < POINTER_TTL_S:
            return cached[1]
        state = self.state.slot_pointer(slot).as_dict()
        self._cache[slot] = (now, state)
        return state

    def save_pointer(self, slot: str, state: dict[str, Any]) -> None:
        state = {**state, "history": list(state.get("history", []))[-HISTORY_KEPT:]}
        self.state.save_slot_pointer(slot, SlotPointer.from_dict(state))
        self._cache[slot] = (time.monotonic(), state)

    def active(self, slot: str) -> AdapterVersion:
        """The version that serves `slot` now (outside the canary share)."""
        versions = self.versions(slot)
        if not versions:
            raise NotFound(f"adapter slot {slot!r} has no versions in {self.root}")
        active = self.pointer(slot).get("active")
        return self.get(slot, active) if active else versions[-1]

    def canary(self, slot: str) -> tuple[AdapterVersion, int] | None:
        """The canary version and its percent, when one runs."""
        canary = self.pointer(slot).get("canary")
        if not canary:
            return None
        return self.get(slot, canary["version"]), int(canary["percent"])

    def route(self, slot: str, sticky_key: str | None) -> AdapterVersion:
        """The version this conversation gets: the canary for its share, else the active one."""
        canary = self.canary(slot)
        if canary and sticky_key and in_canary(sticky_key, slot, canary[0].version, canary[1]):
            return canary[0]
        return self.active(slot)

    def serving(self, slot: str) -> list[AdapterVersion]:
        """Every version chats of `slot` may be routed to (they must stay loaded): the active
        one, the canary, and those release pairs hold (serving, canary, under their gate)."""
        canary = self.canary(slot)
        found = [self.active(slot), *([canary[0]] if canary else [])]
        for label in sorted(release_held_adapters(self.state)):
            held_slot, _, version = label.partition("@")
            if held_slot == slot and version not in {v.version for v in found}:
                with contextlib.suppress(NotFound):  # a deleted folder cannot be loaded anyway
                    found.append(self.get(slot, version))
        return found


def _list_versions(folder: Path, slot: str) -> list[AdapterVersion]:
    found = [
        AdapterVersion(slot, p.name, p.resolve())
        for p in folder.iterdir()
        if p.is_dir() and VERSION.match(p.name) and (p / CONFIG_FILE).is_file()
    ]
    return sorted(found, key=lambda v: version_number(v.version))


def register_version(
    root: Path,
    source: Path,
    slot: str,
    base_model: str,
    max_rank: int,
    model_dir: Path | None = None,
) -> AdapterVersion:
    """Validate `source` and copy it to `root/<slot>/vN` atomically (copy, then rename).

    Files only: it never touches the pointer, so the new version serves nothing until
    someone activates it.
    """
    if not SLOT_NAME.match(slot):
        raise BadInput(f"slot {slot!r} must be lowercase letters, digits, '-' or '_'")
    validate_adapter_folder(source, base_model, max_rank, model_dir)
    folder = root / slot
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".register-{uuid.uuid4().hex[:12]}"
    try:
        _copy_adapter_files(source, staging)
        validate_adapter_folder(staging, base_model, max_rank, model_dir)  # the copy itself
        target = publish_next(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return AdapterVersion(slot, target.name, target.resolve())


def _copy_adapter_files(source: Path, staging: Path) -> None:
    staging.mkdir()
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        if (source / name).is_file():
            shutil.copyfile(source / name, staging / name)
            (staging / name).chmod(0o444)  # versions are immutable
