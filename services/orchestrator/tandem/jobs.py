"""Background jobs (index builds) run in a worker thread; one job of a kind at a time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tandem.errors import Conflict, NotFound

ProgressFn = Callable[[str, int, int], None]
JobFn = Callable[[ProgressFn], dict[str, Any]]
KEEP_FINISHED = 50


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": dict(self.progress),
            "result": self.result,
            "error": self.error,
        }


class JobManager:
    """Tracks jobs in memory; `submit` refuses a second running job of the same kind (409)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def running(self, kind: str) -> Job | None:
        return next(
            (j for j in self.jobs.values() if j.kind == kind and j.status in {"queued", "running"}),
            None,
        )

    def submit(self, kind: str, fn: JobFn) -> Job:
        with self._lock:
            busy = self.running(kind)
            if busy is not None:
                raise Conflict(f"a {kind} job is already running: {busy.id}")
            job = Job(id=f"{kind}-{uuid.uuid4().hex[:12]}", kind=kind)
            self.jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, fn), daemon=True, name=job.id).start()
        return job

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise NotFound(f"job {job_id!r} does not exist (jobs are kept per replica)")
        return self.jobs[job_id]

    def _run(self, job: Job, fn: JobFn) -> None:
        job.status = "running"

        def progress(stage: str, done: int, total: int) -> None:
            job.progress = {"stage": stage, "done": done, "total": total}

        try:
            job.result = fn(progress)
            job.status = "succeeded"
        except Exception as error:  # the job reports it; the serving state is untouched
            job.error = f"{type(error).__name__}: {error}"
            job.status = "failed"

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status in {"succeeded", "failed"}]
        for job in sorted(finished, key=lambda j: j.created)[:-KEEP_FINISHED]:
            del self.jobs[job.id]
