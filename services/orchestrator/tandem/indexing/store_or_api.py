"""Each `tandem index` action runs on the store when this process can open it, else through
the admin API of the running Tandem that holds it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from tandem.api_client import TandemClient
from tandem.cli.progress import progress_bar
from tandem.errors import DependencyDown, TandemError
from tandem.settings import Settings, get_settings
from tandem.stores.deployment import Stores

console = Console(stderr=True)
POLL_S = 1.0
T = TypeVar("T")
Local = Callable[[Stores], T]
Remote = Callable[[TandemClient], T]


@contextmanager
def _admin_api(settings: Settings) -> Iterator[TandemClient]:
    url = f"http://127.0.0.1:{settings.port}"
    key = settings.admin_keys[0] if settings.admin_keys else None
    console.print(f"the store is held by a running Tandem; asking its admin API at {url}")
    with TandemClient(url, key) as api:
        yield api


def _with_store(settings: Settings, local: Local[T], remote: Remote[T]) -> T:
    """Run `local` on the store when this process can open it, else `remote` on the API."""
    from tandem.stores.deployment import open_stores

    try:
        stores = open_stores(settings, dim=0)
    except DependencyDown as error:
        if "in use by another process" not in str(error):
            raise
        with _admin_api(settings) as api:
            return remote(api)
    try:
        return local(stores)
    finally:
        stores.close()


def _build_locally(settings: Settings, path: Path, release: str) -> Local[dict[str, Any]]:
    def build(stores: Stores) -> dict[str, Any]:
        from tandem.indexing.reindex import index_release
        from tandem.rag.embedder import build_embedder

        embedder = build_embedder(settings)
        stores.docs.dim = embedder.dim
        with progress_bar() as progress:
            report = index_release(
                stores,
                embedder,
                path,
                release,
                settings.qdrant.alias,
                progress,
                keep=settings.qdrant.keep_releases,
            )
        return report.summary()

    return build


def _build_remotely(path: Path, release: str) -> Remote[dict[str, Any]]:
    def build(api: TandemClient) -> dict[str, Any]:
        job_id = api.start_index(str(path.resolve()), release)
        with progress_bar() as progress:
            job = api.wait_for_job(
                job_id, lambda p: progress(p["stage"], p["done"], p["total"]), POLL_S
            )
        if job["status"] == "failed":
            raise DependencyDown(f"index job {job_id} failed: {job['error']}")
        result = dict(job["result"])
        result["changes"] = {k: result.get("changes", {}).get(k) for k in ("previous", "summary")}
        return result

    return build


def _run(action: Callable[[Settings], dict[str, Any]]) -> int:
    """Print the action's result as JSON; a domain error becomes a message and exit code 2."""
    try:
        result = action(get_settings())
    except TandemError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


def index_command(path: Path, release: str) -> int:
    """Index `path` as `release`; returns the exit code."""
    from tandem.indexing.loader import load_release

    def build(settings: Settings) -> dict[str, Any]:
        load_release(path)  # a wrong folder fails now, not after the model has loaded
        local, remote = _build_locally(settings, path, release), _build_remotely(path, release)
        return _with_store(settings, local, remote)

    return _run(build)


def status_command() -> int:
    """Print the serving release and the kept ones."""
    from tandem.indexing.releases import index_overview

    def local(settings: Settings) -> Local[dict[str, Any]]:
        return lambda stores: index_overview(stores, settings.qdrant.alias)

    return _run(lambda s: _with_store(s, local(s), TandemClient.index_overview))


def rollback_command(collection: str | None, release: str | None) -> int:
    """Serve a kept release again (default: the one before the serving one)."""
    from tandem.indexing.releases import rollback_release

    def local(settings: Settings) -> Local[dict[str, Any]]:
        return lambda stores: rollback_release(stores, settings.qdrant.alias, collection, release)

    body = {k: v for k, v in {"collection": collection, "release": release}.items() if v}

    def remote(api: TandemClient) -> dict[str, Any]:
        result: dict[str, Any] = api.call("POST", "/v1/admin/index/rollback", json=body)
        return result

    return _run(lambda s: _with_store(s, local(s), remote))


def changes_command(release: str | None) -> int:
    """Print what a kept release changed (default: the serving one)."""
    from tandem.indexing.releases import release_changes_of

    def local(settings: Settings) -> Local[dict[str, Any]]:
        return lambda stores: release_changes_of(stores, settings.qdrant.alias, release)

    params = {"release": release} if release else {}

    def remote(api: TandemClient) -> dict[str, Any]:
        result: dict[str, Any] = api.call("GET", "/v1/admin/index/changes", params=params)
        return result

    return _run(lambda s: _with_store(s, local(s), remote))
