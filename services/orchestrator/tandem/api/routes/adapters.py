"""Admin API for adapters: slots, versions, activation (canary too) and rollback. Admin key only.

Clients name slots and versions; the files are always resolved from the adapters folder.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi import APIRouter, Request

from tandem.adapters.overview import adapter_overview
from tandem.adapters.swap import AdapterSwapper
from tandem.api.admin_schemas import ActivateRequest, AdapterOverview, AdapterSwap
from tandem.api.deps import AdminKey

router = APIRouter(prefix="/v1/admin", tags=["admin"])
ACTOR = re.compile(r"[^A-Za-z0-9._@ -]")


def swapper_of(request: Request) -> AdapterSwapper:
    swapper: AdapterSwapper = request.app.state.swapper
    return swapper


def actor(request: Request, key: str) -> str:
    """Who asked, for the history: the X-Tandem-Actor name and a fingerprint of the key."""
    fingerprint = "open" if key == "open" else f"key:{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    name = ACTOR.sub("", request.headers.get("x-tandem-actor", ""))[:64].strip()
    return f"{name} ({fingerprint})" if name else fingerprint


@router.get("/adapters", response_model=AdapterOverview)
async def list_adapters(request: Request, key: AdminKey) -> dict[str, Any]:
    """Slots, their active version and canary, history, and every version with its counts."""
    return await adapter_overview(swapper_of(request))


@router.post(
    "/adapters/{slot}/activate", response_model=AdapterSwap, response_model_exclude_unset=True
)
async def activate_adapter(
    slot: str, body: ActivateRequest, request: Request, key: AdminKey
) -> dict[str, Any]:
    """Load into every replica, probe, then serve to `percent`% of conversations."""
    return await swapper_of(request).activate(slot, body.version, body.percent, actor(request, key))


@router.post(
    "/adapters/{slot}/rollback", response_model=AdapterSwap, response_model_exclude_unset=True
)
async def rollback_adapter(slot: str, request: Request, key: AdminKey) -> dict[str, Any]:
    """End the canary, or go back to the previously active version."""
    return await swapper_of(request).rollback(slot, actor(request, key))
