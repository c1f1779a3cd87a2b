"""`tandem index`: in-process when the store is free, through the admin API when `up` holds it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from rich.console import Console

from tandem.errors import DependencyDown, TandemError
from tandem.progress import progress_bar
from tandem.settings import Settings, get_settings

console = Console(stderr=True)
POLL_S = 1.0


def _index_locally(settings: Settings, path: Path, release: str) -> dict[str, object]:
    from tandem.indexing.reindex import index_release
    from tandem.rag.embedder import SentenceTransformerEmbedder
    from tandem.rag.store import DocStore, open_client

    client = open_client(settings)
    try:
        embedder = SentenceTransformerEmbedder(batch_size=settings.retrieval.embed_batch_size)
        store = DocStore(client, embedder.dim)
        with progress_bar() as progress:
            report = index_release(store, embedder, path, release, settings.qdrant.alias, progress)
        return report.as_dict()
    finally:
        client.close()


def _index_through_api(settings: Settings, path: Path, release: str) -> dict[str, object]:
    url = f"http://127.0.0.1:{settings.port}"
    key = settings.admin_keys[0] if settings.admin_keys else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    console.print(f"the store is held by a running Tandem; submitting to {url}")
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        response = http.post(
            "/v1/admin/index", json={"path": str(path.resolve()), "release": release}
        )
        if response.status_code != 202:
            raise DependencyDown(f"{url} refused the index job: {response.text}")
        job_id = response.json()["job"]
        with progress_bar() as progress:
            while True:
                job = http.get(f"/v1/admin/jobs/{job_id}").json()
                if p := job.get("progress"):
                    progress(p["stage"], p["done"], p["total"])
                if job["status"] in {"succeeded", "failed"}:
                    break
                time.sleep(POLL_S)
    if job["status"] == "failed":
        raise DependencyDown(f"index job {job_id} failed: {job['error']}")
    return dict(job["result"])


def index_command(path: Path, release: str) -> int:
    """Index `path` as `release`; returns the exit code."""
    settings = get_settings()
    try:
        try:
            report = _index_locally(settings, path, release)
        except DependencyDown as error:
            if "in use by another process" not in str(error):
                raise
            report = _index_through_api(settings, path, release)
    except TandemError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    console.print(json.dumps(report, indent=2))
    return 0
