"""The in-progress build marker: written before a collection is created, cleared after.

A marker whose owner is gone (same host and its process is dead, or no heartbeat for
`STALE_AFTER_S`) belongs to a crashed build: its collection is a leftover to delete.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from tandem.errors import Conflict
from tandem.rag.store import DocStore

BUILD_KEY = "index_build"
DOC_PREFIX = "docs-"
HEARTBEAT_S = 5.0
STALE_AFTER_S = 120.0
Beat = Callable[[], None]

_local_builds: set[str] = set()  # collections this process is building right now
_lock = threading.Lock()


def _owner_alive(marker: dict[str, Any]) -> bool:
    owner = marker.get("owner") or {}
    if owner.get("host") != socket.gethostname():
        return True  # another machine: only the heartbeat can tell
    pid = int(owner.get("pid", -1))
    if pid == os.getpid():
        return str(marker.get("collection")) in _local_builds
    return bool(psutil.pid_exists(pid))


def live_build(store: DocStore, clear_stale: bool = False) -> dict[str, Any] | None:
    """The marker of a build that is still running somewhere, or None."""
    marker = store.get_meta(BUILD_KEY) or {}
    if not marker.get("collection"):
        return None
    fresh = time.time() - float(marker.get("heartbeat", 0.0)) < STALE_AFTER_S
    if fresh and _owner_alive(marker):
        return marker
    if clear_stale:
        store.put_meta(BUILD_KEY, {})
    return None


def _claim(store: DocStore, collection: str, release: str) -> dict[str, Any]:
    with _lock:
        if (other := live_build(store)) is not None:
            raise Conflict(
                f"an index build is already running: {other['release']} "
                f"({other['collection']}, on {other['owner']['host']})"
            )
        now = time.time()
        marker = {
            "collection": collection,
            "release": release,
            "owner": {"host": socket.gethostname(), "pid": os.getpid()},
            "started": now,
            "heartbeat": now,
        }
        store.put_meta(BUILD_KEY, marker)
        _local_builds.add(collection)
        return marker


@contextmanager
def build_marker(store: DocStore, collection: str, release: str) -> Iterator[Beat]:
    """Mark the build in progress; yields `beat()` to call often (it writes every few s)."""
    marker = _claim(store, collection, release)
    last = [marker["heartbeat"]]

    def beat() -> None:
        now = time.time()
        if now - last[0] >= HEARTBEAT_S:
            last[0] = now
            store.put_meta(BUILD_KEY, {**marker, "heartbeat": now})

    try:
        yield beat
    finally:
        _local_builds.discard(collection)
        store.put_meta(BUILD_KEY, {})
