"""Adapter version folders `<slot>/vN/`: their names, their files, the served name.

The one home of what training (which publishes versions) and the registry (which serves
them) must agree on: a version is `v1`, `v2`, …, never reused; vLLM serves it as
`<slot>-vN`; a folder holds the peft files plus an optional card. What makes a folder safe
to serve is `adapter_check.validate_adapter_folder`.
"""

from __future__ import annotations

import re
from pathlib import Path

from tandem.errors import BadInput, Conflict, NotFound

VERSION = re.compile(r"^v([1-9]\d*)$")
SLOT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE)
OPTIONAL_FILES = ("card.json", "README.md")
CLAIM_TRIES = 100


def served_name(slot: str, version: str) -> str:
    """The name vLLM serves `slot`'s `version` under (distinct per version)."""
    return f"{slot}-{version}"


def is_served_name_of(slot: str, name: str) -> bool:
    """Whether `name` is the served name of some version of `slot`."""
    prefix = f"{slot}-"
    return name.startswith(prefix) and VERSION.match(name[len(prefix) :]) is not None


def version_number(version: str) -> int:
    """The N of `vN`; anything else is not a version (404)."""
    match = VERSION.match(version)
    if not match:
        raise NotFound(f"{version!r} is not a version name like v1, v2")
    return int(match.group(1))


def existing_versions(folder: Path) -> list[int]:
    """The N of every `vN` entry in a slot folder, sorted (names are never reused)."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := VERSION.match(p.name)))


def next_version(folder: Path) -> str:
    """The next free version name of a slot folder."""
    return f"v{max(existing_versions(folder), default=0) + 1}"


def claim_version(folder: Path, version: str | None) -> Path:
    """The folder a new version goes to: the next free `vN`, or `version` if it is free."""
    version = version or next_version(folder)
    if not VERSION.match(version):
        raise BadInput(f"version {version!r} must look like v1, v2, ...")
    target = folder / version
    if target.exists():
        raise Conflict(
            f"{target} already exists and versions are immutable; "
            "train into a new version (omit --version to take the next free one)"
        )
    return target


def publish(staging: Path, target: Path) -> Path:
    """Move a complete version into place; refuses when the target appeared meanwhile."""
    if target.exists():
        raise Conflict(f"{target} appeared meanwhile; the new adapter stays in {staging}")
    staging.rename(target)
    return target


def publish_next(staging: Path, folder: Path) -> Path:
    """Rename a complete copy to the next free `vN` (retrying if another publisher won)."""
    for _ in range(CLAIM_TRIES):
        target = folder / next_version(folder)
        try:
            return publish(staging, target)
        except (Conflict, OSError):
            continue  # a concurrent publisher took this number first
    raise BadInput(f"could not claim a new version folder in {folder}")
