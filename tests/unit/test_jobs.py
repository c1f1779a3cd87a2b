"""Background jobs log what goes wrong: failed status writes, and failed jobs with their
traceback (the job's own error stays in its status for the admin API)."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from tandem.errors import BadInput
from tandem.jobs import Job, JobManager, ProgressFn
from tandem.stores.sqlite import StateDatabase
from tandem.stores.sqlite_state import SqliteStateStore
from tandem.stores.state import JobRecord, MemoryStateStore


def wait_done(jobs: JobManager, job: Job) -> Job:
    """The job once its thread ended (after its final status write)."""
    for thread in threading.enumerate():  # none when it ended already
        if thread.name == job.id:
            thread.join(10)
            assert not thread.is_alive()
    return jobs.get(job.id)


def three_stages(progress: ProgressFn) -> dict[str, Any]:
    for stage in ("load", "embed", "store"):
        progress(stage, 1, 1)
    return {"chunks": 3}


def job_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tandem.jobs"]


def test_status_writes_that_fail_are_logged_and_the_job_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The state database disappears: SQLite cannot open it for any write."""
    state = SqliteStateStore(StateDatabase(tmp_path / "state" / "state.sqlite3"))
    shutil.rmtree(tmp_path / "state")
    jobs = JobManager(state)
    with caplog.at_level(logging.INFO, logger="tandem.jobs"):
        job = wait_done(jobs, jobs.submit("index", three_stages))
    assert job.status == "succeeded" and job.result == {"chunks": 3}
    warned = job_records(caplog)
    # the first failure of the streak, then the final status (other replicas need it)
    assert [r.levelno for r in warned] == [logging.WARNING, logging.WARNING]
    assert "queued status was not saved" in warned[0].getMessage()
    assert "succeeded status was not saved" in warned[1].getMessage()
    assert "unable to open database file" in warned[0].getMessage()
    assert not [r for r in warned if r.exc_info]  # the store failing: no traceback


class BuggyJobWrites(MemoryStateStore):
    """A state store with a bug in writing jobs for its first `failures` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def save_job(self, job: JobRecord) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TypeError("Object of type set is not JSON serializable")
        super().save_job(job)


def test_a_bug_in_a_status_write_is_logged_with_its_traceback_and_the_recovery_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = BuggyJobWrites(failures=2)
    jobs = JobManager(state)
    with caplog.at_level(logging.INFO, logger="tandem.jobs"):
        job = wait_done(jobs, jobs.submit("index", three_stages))
    logged = job_records(caplog)
    assert logged[0].levelno == logging.WARNING and logged[0].exc_info is not None
    assert "saved again" in logged[1].getMessage()
    stored = state.job(job.id)
    assert stored is not None and stored.status == "succeeded"  # the last write got through


def test_a_failed_job_logs_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def broken(progress: ProgressFn) -> dict[str, Any]:
        return {"pages": 1 // 0}

    jobs = JobManager(MemoryStateStore())
    with caplog.at_level(logging.INFO, logger="tandem.jobs"):
        job = wait_done(jobs, jobs.submit("index", broken))
    assert job.status == "failed" and job.error is not None
    assert job.error.startswith("ZeroDivisionError: integer division")
    (failed,) = job_records(caplog)
    assert failed.levelno == logging.ERROR and failed.exc_info is not None
    assert failed.exc_info[0] is ZeroDivisionError and job.id in failed.getMessage()


def test_a_job_refused_for_its_input_logs_the_reason_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_pages(progress: ProgressFn) -> dict[str, Any]:
        raise BadInput("no Markdown pages under /docs/v9")

    jobs = JobManager(MemoryStateStore())
    with caplog.at_level(logging.INFO, logger="tandem.jobs"):
        job = wait_done(jobs, jobs.submit("index", no_pages))
    assert job.status == "failed"
    (failed,) = job_records(caplog)
    assert failed.levelno == logging.WARNING and failed.exc_info is None
    assert "no Markdown pages under /docs/v9" in failed.getMessage()
