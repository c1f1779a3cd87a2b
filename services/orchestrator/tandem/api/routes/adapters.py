"""Admin API for adapters: slots, versions, activation and rollback. Admin key only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tandem.api.deps import AdminKey, ServicesDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/adapters")
async def list_adapters(services: ServicesDep, key: AdminKey) -> dict[str, Any]:
    """Slots, their active version and every version with its card."""
    registry = services.registry
    slots = []
    for slot in registry.slots():
        active = registry.active(slot)
        slots.append(
            {
                "slot": slot,
                "active": active.version,
                "served_name": active.served_name,
                "pointer": registry.pointer(slot, fresh=True),
                "versions": [
                    {"version": v.version, "served_name": v.served_name, "card": v.card()}
                    for v in registry.versions(slot)
                ],
            }
        )
    return {"slots": slots}
