"""`/healthz` (alive), `/readyz` (dependencies usable), `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tandem.api.deps import ServicesDep
from tandem.errors import TandemError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependency checks)."""
    return {"status": "ok"}


async def readiness(services: ServicesDep) -> dict[str, Any]:
    """vLLM reachable, the active adapter servable, the index alias present."""
    checks: dict[str, Any] = {}
    await services.pool.refresh_health()
    checks["vllm"] = any(services.pool.healthy.values())
    try:
        adapter = services.registry.active(services.settings.default_slot)
        served: set[str] = set()
        for client in services.pool.clients:
            if services.pool.healthy.get(client.base_url):
                served.update(await client.served_models())
        checks["adapter"] = adapter.served_name in served
        checks["adapter_version"] = adapter.label
    except TandemError as error:
        checks["adapter"], checks["adapter_error"] = False, str(error)
    try:
        info = await anyio.to_thread.run_sync(services.retriever.index_info)
        checks["index"], checks["release"] = True, info.release
    except TandemError as error:
        checks["index"], checks["index_error"] = False, str(error)
    return checks


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = await readiness(services)
    ready = all(checks[name] for name in ("vllm", "adapter", "index"))
    headers = None if ready else {"Retry-After": "5"}
    return JSONResponse(
        {"ready": ready, "checks": checks}, status_code=200 if ready else 503, headers=headers
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
