"""Admin API for releases: index jobs, the serving release, history, rollback. Admin key only."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Query, Request

from tandem.api.admin_schemas import (
    IndexOverview,
    IndexRequest,
    JobCreated,
    JobStatus,
    ReleaseChanges,
    RollbackRequest,
    RollbackResult,
)
from tandem.api.deps import AdminKey, Services, ServicesDep
from tandem.indexing.releases import (
    allowed_index_path,
    index_overview,
    release_changes_of,
    rollback_release,
    start_index_job,
)
from tandem.jobs import JobManager

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def jobs_of(request: Request, services: Services) -> JobManager:
    """This app's job manager, writing job states to the shared state store."""
    jobs: JobManager = request.app.state.jobs  # built with the shared state in the lifespan
    return jobs


@router.post("/index", status_code=202, response_model=JobCreated)
async def start_index(
    body: IndexRequest, request: Request, services: ServicesDep, key: AdminKey
) -> JobCreated:
    """Build the release in a new collection; the pointer moves only once it is verified."""
    folder = allowed_index_path(body.path, services.settings.index_roots)
    job = await anyio.to_thread.run_sync(
        lambda: start_index_job(
            jobs_of(request, services),
            services.stores,
            services.embedder,
            services.settings,
            folder,
            body.release,
            services.index_embedder,
        )
    )
    return JobCreated(job=job.id)


@router.get("/jobs/{job_id}", response_model=JobStatus)
async def job_status(
    job_id: str, request: Request, services: ServicesDep, key: AdminKey
) -> dict[str, Any]:
    job = await anyio.to_thread.run_sync(jobs_of(request, services).get, job_id)
    return job.as_dict()


@router.get("/index", response_model=IndexOverview)
async def index_status(services: ServicesDep, key: AdminKey) -> dict[str, Any]:
    """The serving release (with what changed) and the releases kept for rollback."""
    return await anyio.to_thread.run_sync(
        index_overview, services.stores, services.settings.qdrant.alias
    )


@router.get("/index/changes", response_model=ReleaseChanges, response_model_exclude_unset=True)
async def index_changes(
    services: ServicesDep,
    key: AdminKey,
    release: str | None = Query(default=None, max_length=64),
    collection: str | None = Query(default=None, max_length=200),
) -> dict[str, Any]:
    """Pages added / changed / removed (with headings) by a kept release; default: serving."""
    alias = services.settings.qdrant.alias
    return await anyio.to_thread.run_sync(
        release_changes_of, services.stores, alias, release, collection
    )


@router.post("/index/rollback", response_model=RollbackResult)
async def index_rollback(
    services: ServicesDep, key: AdminKey, body: RollbackRequest | None = None
) -> dict[str, Any]:
    """Move the pointer back to a kept release (default: the one before the serving one)."""
    target = body or RollbackRequest()
    alias = services.settings.qdrant.alias
    return await anyio.to_thread.run_sync(
        rollback_release, services.stores, alias, target.collection, target.release
    )
