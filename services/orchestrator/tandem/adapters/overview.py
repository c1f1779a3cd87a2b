"""What the admin listing shows: slots, pointer, versions, where each is loaded, its counts."""

from __future__ import annotations

from typing import Any

import anyio
from prometheus_client import REGISTRY

from tandem.adapters.registry import AdapterVersion
from tandem.adapters.swap import AdapterSwapper
from tandem.errors import TandemError

HISTORY_SHOWN = 20


def request_counts(label: str) -> dict[str, int]:
    """Requests and errors this orchestrator served with `label` (the /metrics counter)."""
    counts = {
        outcome: int(
            REGISTRY.get_sample_value(
                "tandem_adapter_requests_total", {"adapter": label, "outcome": outcome}
            )
            or 0
        )
        for outcome in ("ok", "error")
    }
    return {"requests": counts["ok"] + counts["error"], "errors": counts["error"]}


async def loaded_adapters(swapper: AdapterSwapper) -> dict[str, list[str]]:
    """Served names per healthy replica (a replica that fails to answer is left out)."""
    loaded: dict[str, list[str]] = {}
    for client in swapper.pool.clients:
        try:
            loaded[client.base_url] = await client.served_models()
        except TandemError:
            continue
    return loaded


def _version_row(
    version: AdapterVersion, role: str | None, loaded: dict[str, list[str]]
) -> dict[str, Any]:
    return {
        "version": version.version,
        "served_name": version.served_name,
        "label": version.label,
        "role": role,
        "loaded_on": [url for url, names in loaded.items() if version.served_name in names],
        **request_counts(version.label),
        "card": version.card(),
    }


async def adapter_overview(swapper: AdapterSwapper) -> dict[str, Any]:
    """Every slot with its active version, canary, history and versions."""
    registry = swapper.registry
    loaded = await loaded_adapters(swapper)
    slots = []
    for slot in registry.slots():
        state = await anyio.to_thread.run_sync(registry.pointer, slot, True)
        active = registry.active(slot)
        canary = state.get("canary") or {}
        roles = {active.version: "active", canary.get("version"): "canary"}
        slots.append(
            {
                "slot": slot,
                "active": active.version,
                "served_name": active.served_name,
                "canary": state.get("canary"),
                "previous": state.get("previous"),
                "swap_running": swapper.busy(slot),
                "history": list(state.get("history", []))[-HISTORY_SHOWN:],
                "versions": [
                    _version_row(v, roles.get(v.version), loaded) for v in registry.versions(slot)
                ],
            }
        )
    return {"slots": slots, "replicas": sorted(loaded)}
