"""Index jobs: one at a time (409), and their state readable from any replica."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tandem.errors import Conflict, NotFound
from tandem.jobs import Job, JobManager, ProgressFn
from tandem.stores.sqlite import StateDatabase
from tandem.stores.sqlite_state import SqliteStateStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStateStore:
    return SqliteStateStore(StateDatabase(tmp_path / "state.sqlite3"))


def wait_done(jobs: JobManager, job: Job) -> Job:
    deadline = time.monotonic() + 10
    while jobs.get(job.id).status not in {"succeeded", "failed"}:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return jobs.get(job.id)


def test_a_second_job_of_a_kind_is_refused_while_the_first_runs(store: SqliteStateStore) -> None:
    release = threading.Event()
    jobs = JobManager(store)

    def slow(progress: ProgressFn) -> dict[str, Any]:
        release.wait(10)
        return {"ok": True}

    first = jobs.submit("index", slow)
    with pytest.raises(Conflict, match=first.id):
        jobs.submit("index", slow)
    release.set()
    assert wait_done(jobs, first).result == {"ok": True}
    wait_done(jobs, jobs.submit("index", slow))


def test_another_replica_reads_status_progress_and_result(store: SqliteStateStore) -> None:
    step = threading.Event()
    jobs, replica = JobManager(store), JobManager(store)

    def work(progress: ProgressFn) -> dict[str, Any]:
        progress("embed", 3, 10)
        step.wait(10)
        return {"embedded": 10}

    job = jobs.submit("index", work)
    deadline = time.monotonic() + 10
    while replica.get(job.id).progress.get("done") != 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert replica.get(job.id).status == "running"
    step.set()
    seen = wait_done(replica, job).as_dict()
    assert (seen["status"], seen["result"]) == ("succeeded", {"embedded": 10})
    assert seen["kind"] == "index"


def test_a_failed_job_reports_its_error_everywhere(store: SqliteStateStore) -> None:
    jobs = JobManager(store)

    def broken(progress: ProgressFn) -> dict[str, Any]:
        raise ValueError("no pages")

    job = jobs.submit("index", broken)
    seen = wait_done(JobManager(store), job)
    assert (seen.status, seen.error) == ("failed", "ValueError: no pages")
    assert jobs.get(job.id).status == "failed"


def test_unknown_jobs_are_404(store: SqliteStateStore) -> None:
    with pytest.raises(NotFound):
        JobManager(store).get("index-nope")
    with pytest.raises(NotFound):
        JobManager().get("index-nope")
