"""Admin API for releases: index jobs, the serving release, history. Admin key only."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tandem.api.deps import AdminKey, ServicesDep
from tandem.api.schemas import IndexRequest, JobStatus
from tandem.indexing.service import allowed_index_path, index_overview, run_index
from tandem.jobs import JobManager

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def jobs_of(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


@router.post("/index", status_code=202)
async def start_index(
    body: IndexRequest, request: Request, services: ServicesDep, key: AdminKey
) -> JSONResponse:
    """Build the release in a new collection; the alias moves only once it is verified."""
    folder = allowed_index_path(body.path, services.settings.index_roots)
    alias = services.settings.qdrant.alias
    job = jobs_of(request).submit(
        "index",
        lambda progress: run_index(
            services.store, services.embedder, folder, body.release, alias, progress
        ),
    )
    return JSONResponse({"job": job.id}, status_code=202)


@router.get("/jobs/{job_id}", response_model=JobStatus)
async def job_status(job_id: str, request: Request, key: AdminKey) -> dict[str, Any]:
    return jobs_of(request).get(job_id).as_dict()


@router.get("/index")
async def index_status(services: ServicesDep, key: AdminKey) -> dict[str, Any]:
    """The serving release and the releases kept for rollback."""
    return await anyio.to_thread.run_sync(
        index_overview, services.store, services.settings.qdrant.alias
    )
