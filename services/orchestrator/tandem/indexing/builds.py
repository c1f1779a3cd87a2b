"""The index build claim: a lease in the shared state, taken before a collection exists.

Claiming is compare-and-set, so two builds started at once (two replicas, or `tandem index`
beside `tandem up`) cannot both win. A claim whose owner is gone (same host and its
process is dead, or no heartbeat for `STALE_AFTER_S`) belongs to a crashed build: its
collection is a leftover to delete, and the next claim takes the lease over.
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
from tandem.stores.state import LeaseRecord, StateStore

BUILD_LEASE = "index-build"
DOC_PREFIX = "docs-"
HEARTBEAT_S = 5.0
STALE_AFTER_S = 120.0
Beat = Callable[[], None]

_local_builds: set[str] = set()  # collections this process is building right now


def _owner_alive(marker: dict[str, Any]) -> bool:
    owner = marker.get("owner") or {}
    if owner.get("host") != socket.gethostname():
        return True  # another machine: only the heartbeat can tell
    pid = int(owner.get("pid", -1))
    if pid == os.getpid():
        return str(marker.get("collection")) in _local_builds
    return bool(psutil.pid_exists(pid))


def _live(lease: LeaseRecord) -> bool:
    return lease.live() and _owner_alive(lease.data)


def live_build(state: StateStore, clear_stale: bool = False) -> dict[str, Any] | None:
    """The marker of a build that is still running somewhere, or None."""
    lease = state.lease(BUILD_LEASE)
    if lease.free:
        return None
    if _live(lease):
        return lease.data
    if clear_stale:  # only if nobody took it over meanwhile
        state.swap_lease(BUILD_LEASE, lease.version, "", 0.0, {})
    return None


def _claim(state: StateStore, collection: str, release: str) -> list[Any]:
    """Take the build lease; returns [version, marker] of this build's claim."""
    current = state.lease(BUILD_LEASE)
    if not current.free and _live(current):
        other = current.data
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
    _local_builds.add(collection)
    if not state.swap_lease(
        BUILD_LEASE, current.version, _owner(collection), now + STALE_AFTER_S, marker
    ):
        _local_builds.discard(collection)
        raise Conflict("another index build claimed the index at the same moment")
    return [current.version + 1, marker]


def _owner(collection: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{collection}"


@contextmanager
def build_marker(state: StateStore, collection: str, release: str) -> Iterator[Beat]:
    """Claim the build; yields `beat()` to call often (it renews the lease every few s).

    A beat that finds the lease taken over raises `Conflict`: this build lost its claim.
    """
    claim = _claim(state, collection, release)
    owner = _owner(collection)

    def beat() -> None:
        now = time.time()
        version, marker = claim
        if now - float(marker["heartbeat"]) < HEARTBEAT_S:
            return
        renewed = {**marker, "heartbeat": now}
        if not state.swap_lease(BUILD_LEASE, version, owner, now + STALE_AFTER_S, renewed):
            raise Conflict(f"the build of {collection} lost its claim to another build")
        claim[:] = [version + 1, renewed]

    try:
        yield beat
    finally:
        _local_builds.discard(collection)
        state.swap_lease(BUILD_LEASE, claim[0], "", 0.0, {})
