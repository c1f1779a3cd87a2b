"""How the slot pointer changes on activate, canary and rollback (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tandem.adapters.versions import served_name, version_number
from tandem.errors import BadInput, Conflict


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _entry(action: str, version: str, percent: int, current: str, by: str) -> dict[str, Any]:
    return {
        "action": action,
        "version": version,
        "percent": percent,
        "from": current,
        "by": by,
        "at": now_iso(),
    }


def activation_state(
    state: dict[str, Any], current: str, version: str, percent: int, by: str
) -> dict[str, Any] | None:
    """The pointer after activating `version` at `percent`; None when nothing would change."""
    canary = state.get("canary")
    if percent >= 100:
        if version == current and not canary:
            return None
        previous = current if version != current else state.get("previous")
        new: dict[str, Any] = {"active": version, "canary": None, "previous": previous}
        action = "activate"
    else:
        if version == current:
            raise BadInput(f"{version} is already active; a canary must be another version")
        if canary == {"version": version, "percent": percent}:
            return None
        new = {
            "active": current,
            "canary": {"version": version, "percent": percent},
            "previous": state.get("previous"),
        }
        action = "canary"
    history = [*state.get("history", []), _entry(action, version, percent, current, by)]
    return {**new, "history": history}


def rollback_state(
    state: dict[str, Any], current: str, known: list[str], by: str
) -> dict[str, Any]:
    """End the canary if one runs; else back to the previous version (or the one below)."""
    if state.get("canary"):
        new: dict[str, Any] = {"active": current, "canary": None, "previous": state.get("previous")}
        entry = _entry("rollback", current, 100, current, by)
        entry["ended_canary"] = state["canary"]["version"]
    else:
        target = state.get("previous")
        if target not in known or target == current:
            below = [v for v in known if version_number(v) < version_number(current)]
            target = below[-1] if below else None
        if target is None:
            raise Conflict(f"{current} has no earlier version to roll back to")
        new = {"active": target, "canary": None, "previous": current}
        entry = _entry("rollback", target, 100, current, by)
    return {**new, "history": [*state.get("history", []), entry]}


def serving_names(slot: str, state: dict[str, Any]) -> set[str]:
    """The served names a pointer state routes chats to (active and canary)."""
    names = {served_name(slot, state["active"])} if state.get("active") else set()
    if state.get("canary"):
        names.add(served_name(slot, state["canary"]["version"]))
    return names
