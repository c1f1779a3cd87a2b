"""`/healthz` (alive), `/readyz` (dependencies usable), `/metrics` (Prometheus)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tandem.api.admin_schemas import Liveness, Readiness
from tandem.api.deps import Services, ServicesDep
from tandem.errors import IndexEmpty, TandemError
from tandem.metrics import INDEX_POINTS
from tandem.rag.retriever import IndexInfo
from tandem.stores.docs import store_reads

router = APIRouter(tags=["health"])
log = logging.getLogger("tandem.api")


@router.get("/healthz", response_model=Liveness)
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
    except TandemError as error:  # the store is down (logged where it was read)
        return {"index": False, "index_state": "unavailable", "index_error": str(error)}
    except Exception:  # a bug: logged; the probe still answers 503, never a bare 500
        log.exception("the readiness check of the index failed")
        reason = "unexpected error; see the server log"
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


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_unset=True,
    responses={503: {"model": Readiness, "description": "Not ready (with `Retry-After`)"}},
)
async def readyz(services: ServicesDep, response: Response) -> dict[str, Any]:
    checks = await readiness(services)
    ready = all(checks[name] for name in ("vllm", "adapter", "index"))
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return {"ready": ready, "checks": checks}


def count_serving_points(services: Services) -> None:
    """`tandem_index_points`: the points of the collection the pointer serves now."""
    retriever = services.retriever
    try:
        collection = retriever.index_info().collection
        INDEX_POINTS.set(store_reads(retriever.stores.docs.count)(collection))
    except TandemError:  # no index yet, or the store is down (logged): keep the last figure
        return
    except Exception:  # a bug: logged, and /metrics still answers with the other figures
        log.exception("counting the serving index's points failed")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(services: ServicesDep) -> Response:
    await anyio.to_thread.run_sync(count_serving_points, services)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
