"""Background jobs (index builds) run in a worker thread; one job of a kind at a time.

With a state store attached, every job's state is written there too, so any replica
can answer `GET /v1/admin/jobs/{id}` for a job another replica runs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tandem.errors import Conflict, NotFound, TandemError
from tandem.stores.docs import storage_failure
from tandem.stores.state import JobRecord, StateStore

ProgressFn = Callable[[str, int, int], None]
JobFn = Callable[[ProgressFn], dict[str, Any]]
KEEP_FINISHED = 50
PERSIST_EVERY_S = 1.0
FINISHED = frozenset({"succeeded", "failed"})
log = logging.getLogger("tandem.jobs")


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    persisted: float = 0.0
    unsaved: bool = False  # the last status write failed (logged once until one succeeds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": dict(self.progress),
            "result": self.result,
            "error": self.error,
        }

    def record(self) -> JobRecord:
        return JobRecord(
            self.id, self.kind, self.status, dict(self.progress), self.result, self.error,
            self.created,
        )  # fmt: skip


class JobManager:
    """Tracks jobs in memory (and in `state`); `submit` refuses a second job of a kind (409)."""

    def __init__(self, state: StateStore | None = None) -> None:
        self.jobs: dict[str, Job] = {}
        self.state = state
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
        self._persist(job, force=True)
        threading.Thread(target=self._run, args=(job, fn), daemon=True, name=job.id).start()
        return job

    def get(self, job_id: str) -> Job:
        """A job of this replica, else one another replica recorded in the shared state."""
        if job_id in self.jobs:
            return self.jobs[job_id]
        stored = self.state.job(job_id) if self.state else None
        if stored is None:
            raise NotFound(f"job {job_id!r} does not exist")
        return Job(
            stored.id, stored.kind, stored.status, dict(stored.progress), stored.result,
            stored.error, stored.created,
        )  # fmt: skip

    def _persist(self, job: Job, force: bool = False) -> None:
        now = time.monotonic()
        if self.state is None or (not force and now - job.persisted < PERSIST_EVERY_S):
            return
        job.persisted = now
        try:
            self.state.save_job(job.record())
        except Exception as error:  # noqa: BLE001 - the job must not fail over its status line
            job.persisted = 0.0  # the next update tries again
            if not job.unsaved or job.status in FINISHED:  # progress: once per failing streak
                log.warning(
                    "job %s: its %s status was not saved to the state store (%r); other "
                    "replicas see an older one until a write succeeds",
                    job.id, job.status, error,
                    exc_info=storage_failure(error) is None,  # a bug: with its traceback
                )  # fmt: skip
            job.unsaved = True
            return
        if job.unsaved:
            log.info("job %s: its status is saved again (%s)", job.id, job.status)
            job.unsaved = False

    def _run(self, job: Job, fn: JobFn) -> None:
        job.status = "running"
        self._persist(job, force=True)

        def progress(stage: str, done: int, total: int) -> None:
            new_stage = job.progress.get("stage") != stage
            job.progress = {"stage": stage, "done": done, "total": total}
            self._persist(job, force=new_stage)

        try:
            job.result = fn(progress)
            job.status = "succeeded"
        except Exception as error:  # the job reports it; the serving state is untouched
            job.error = f"{type(error).__name__}: {error}"
            job.status = "failed"
            if isinstance(error, TandemError) and error.status < 500:  # bad input: its message
                log.warning("job %s failed: %s", job.id, job.error)
            else:
                log.error("job %s failed: %s", job.id, job.error, exc_info=error)
        self._persist(job, force=True)

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status in FINISHED]
        for job in sorted(finished, key=lambda j: j.created)[:-KEEP_FINISHED]:
            del self.jobs[job.id]
