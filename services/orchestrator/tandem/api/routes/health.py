"""`/healthz` (alive), `/readyz` (dependencies usable), `/metrics` (Prometheus)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tandem.api.deps import Services, ServicesDep
from tandem.errors import IndexEmpty, TandemError
from tandem.metrics import INDEX_POINTS
from tandem.rag.retriever import IndexInfo

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependency checks)."""
    return {"status": "ok"}


async def adapter_readiness(services: Services) -> dict[str, Any]:
    """The default slot's active version is loaded on at least one healthy replica."""
    try:
        adapter = services.registry.active(services.settings.default_slot)
    except TandemError as error:
        return {"adapter": False, "adapter_error": str(error)}
    serving_on = []
    for client in services.pool.clients:
        if not services.pool.healthy.get(client.base_url):
            continue
        with contextlib.suppress(TandemError):  # went down since the health check
            if adapter.served_name in await client.served_models():
                serving_on.append(client.base_url)
    return {
        "adapter": bool(serving_on),
        "adapter_version": adapter.label,
        "adapter_replicas": serving_on,
    }


async def index_readiness(index_info: Callable[[], IndexInfo]) -> dict[str, Any]:
    """`index_state` tells a fresh deployment ("empty": run the index job) from a broken one."""
    try:
        info = await anyio.to_thread.run_sync(index_info)
    except IndexEmpty as error:
        return {"index": False, "index_state": "empty", "index_error": str(error)}
    except Exception as error:  # a probe answers 503 with the reason, never a bare 500
        reason = str(error) if isinstance(error, TandemError) else repr(error)
        return {"index": False, "index_state": "unavailable", "index_error": reason}
    return {"index": True, "index_state": "serving", "release": info.release}


async def readiness(services: ServicesDep) -> dict[str, Any]:
    """vLLM reachable, the active adapter servable somewhere, the index alias present."""
    checks: dict[str, Any] = {}
    await services.pool.refresh_health()
    checks["vllm"] = any(services.pool.healthy.values())
    if services.vllm_report is not None:  # why vLLM is down, and whether it comes back
        checks["vllm_supervisor"] = services.vllm_report()
    checks.update(await adapter_readiness(services))
    checks.update(await index_readiness(services.retriever.index_info))
    return checks


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = await readiness(services)
    ready = all(checks[name] for name in ("vllm", "adapter", "index"))
    headers = None if ready else {"Retry-After": "5"}
    return JSONResponse(
        {"ready": ready, "checks": checks}, status_code=200 if ready else 503, headers=headers
    )


def count_serving_points(services: Services) -> None:
    """`tandem_index_points`: the points of the collection the pointer serves now."""
    retriever = services.retriever
    with contextlib.suppress(Exception):  # no index yet or the store is down: keep the last
        INDEX_POINTS.set(retriever.stores.docs.count(retriever.index_info().collection))


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    await anyio.to_thread.run_sync(count_serving_points, services)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
