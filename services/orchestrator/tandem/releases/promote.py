"""Promote, canary and roll back release pairs: load → begin → switch → derive → finish.

The pair pointer (`PairPointer`, one record in the shared state) is the truth for what
serves; a change is written to it by compare-and-set in the steps `transitions` describes.
The adapter is loaded and probed on every vLLM replica before anything is written, so a bad
adapter or a replica down changes nothing. After the switch the derived pointers follow: the
`docs` alias (what `/v1/retrieve`, `GET /v1/admin/index` and turns without a pair read) and
the slot's active adapter (what the adapter check keeps loaded). `converge` finishes or undoes
a change that a crash interrupted — at start-up for this machine's own, or by any replica once
`stale_after_s` passed — so after a restart exactly one pair serves and the journal says which.

`TANDEM_TEST_RELEASE_CRASH_AT=<step>` (begun, switched, docs, adapter) makes this process
SIGKILL itself right after that step: the crash tests kill `tandem up` there.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
import psutil

from tandem.adapters.registry import AdapterRegistry, AdapterVersion
from tandem.adapters.swap import AdapterSwapper
from tandem.adapters.transitions import now_iso
from tandem.errors import BadInput, Conflict, NotFound, TandemError
from tandem.indexing.history import record_release
from tandem.releases.gate import GateFailed
from tandem.releases.pointer import ReleasePointer
from tandem.releases.transitions import (
    BEGUN,
    CANARY,
    PROMOTE,
    ROLLBACK,
    abort,
    begin,
    finish,
    switch,
)
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.state import PairPointer, ReleasePair

log = logging.getLogger("tandem.releases")
CRASH_AT_ENV = "TANDEM_TEST_RELEASE_CRASH_AT"
CANARY_POINTER = "release-canary"  # keeps the canary's collection while it is not the alias's
PROCESS = uuid.uuid4().hex  # this process's life, told apart from an earlier one with its pid


def crash_point(step: str) -> None:
    """Die here, as `kill -9` would, when the crash tests ask for this step."""
    if os.environ.get(CRASH_AT_ENV) == step:
        log.warning("%s=%s: killing this process", CRASH_AT_ENV, step)
        os.kill(os.getpid(), signal.SIGKILL)


def owner() -> dict[str, Any]:
    """Who does something: this host, process id and this process's life (pids are reused)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "process": PROCESS}


def process_alive(who: dict[str, Any]) -> bool:
    """Whether the process `who` names still runs (one on another host is taken to)."""
    if who.get("process") == PROCESS or who.get("host") != socket.gethostname():
        return True
    pid = int(who.get("pid", -1))
    return pid != os.getpid() and psutil.pid_exists(pid)


@dataclass
class Promoter:
    settings: Settings
    stores: Stores
    registry: AdapterRegistry
    swapper: AdapterSwapper
    pointer: ReleasePointer
    _running: set[str] = field(default_factory=set)  # changes this process is making now

    async def promote(
        self, release: str, by: str, force: bool = False, canary: float | None = None
    ) -> dict[str, Any]:
        """Serve `release` (to a `canary` share of conversations first, when given)."""
        if canary is not None and not 0 < canary < 1:
            raise BadInput(f"canary is a share of conversations between 0 and 1, not {canary}")
        pair = await self._promotable(release, force, canary)
        await self._load(pair.adapter)
        if canary is not None:  # kept from clean-up while no alias serves it
            await anyio.to_thread.run_sync(
                self.stores.docs.move_pointer, CANARY_POINTER, pair.collection
            )
        forced = list(pair.gate.get("violations") or []) if force else []
        details: dict[str, Any] = {"share": canary} if canary is not None else {}
        if forced:
            details["forced"] = forced
            record = {"by": by, "at": now_iso(), "violations": forced}
            updated = ReleasePair.from_dict({**pair.as_dict(), "forced": [*pair.forced, record]})
            await anyio.to_thread.run_sync(self.stores.state.save_release_pair, updated)
        op = CANARY if canary is not None else PROMOTE
        current = await self._read()
        if current.serving is None:  # the first pair: what serves now stays for a rollback
            details["replaces"] = await anyio.to_thread.run_sync(self._serving_without_pairs)
        return await self._change(op, pair.entry(), by, details)

    def _serving_without_pairs(self) -> dict[str, Any] | None:
        """What serves before any pair did (the docs alias and the default slot's active
        version) as a pair entry, named `<docs release>+<adapter>`."""
        collection = self.stores.docs.pointer_target(self.settings.qdrant.alias)
        if collection is None:
            return None
        record = self.stores.state.release_record(collection)
        docs_release = record.release if record else "unknown"
        slot = self.settings.default_slot
        adapter = self.registry.active(slot).label if self.registry.versions(slot) else None
        return {"release": f"{docs_release}+{adapter or 'base'}", "collection": collection,
                "docs_release": docs_release, "adapter": adapter}  # fmt: skip

    async def rollback(self, by: str, reason: str | None = None) -> dict[str, Any]:
        """End the canary if one runs, else serve the newest kept pair that still exists."""
        current = await self._read()
        target = None if current.canary else await self._rollback_target(current)
        if target is not None:
            await self._load(target.get("adapter"))
        details = {"reason": reason} if reason else {}
        if current.canary:
            details["ended_canary"] = current.canary["release"]
        return await self._change(ROLLBACK, target, by, details)

    async def _change(
        self, op: str, target: dict[str, Any] | None, by: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        current = await self._read()
        change = uuid.uuid4().hex[:12]
        pending = begin(current, op, target, by, id=change, owner=owner(), **details)
        self._running.add(change)
        try:
            begun = await self._write(current, pending)
            crash_point("begun")
            switched = await self._write(begun, switch(begun, self.settings.releases.keep))
            crash_point("switched")
            try:
                await self.derive(switched)
            except TandemError as error:  # it serves already; the watch finishes the rest
                log.warning("release %s of %s: derived pointers wait: %s", op, target, error)
                return {"changed": True, "converging": str(error), **_view(switched)}
            done = await self._write(switched, finish(switched, "done"))
        finally:
            self._running.discard(change)
        return {"changed": True, **_view(done)}

    async def converge(self, now: float) -> str | None:
        """Finish (or undo) a change a crashed replica left; what was done, or None."""
        current = await self._read()
        pending = current.pending
        if pending is None or not self._abandoned(pending, now):
            return None
        if pending["step"] == BEGUN:
            kept = pending["from"] or "nothing"
            note = f"interrupted before the switch; {kept} kept serving"
            await self._write(current, abort(current, note))
            return note
        await self.derive(current)
        serving = (current.serving or {}).get("release")
        note = f"interrupted after the switch and finished; {serving} serves"
        await self._write(current, finish(current, note))
        return note

    def _abandoned(self, pending: dict[str, Any], now: float) -> bool:
        """Nobody works on `pending` any more: its process died, or gave up, or went silent."""
        who = pending.get("owner") or {}
        if who.get("process") == PROCESS:
            return pending.get("id") not in self._running
        if who.get("host") == socket.gethostname():
            return not process_alive(who)
        return now - float(pending.get("started", 0)) > self.settings.releases.stale_after_s

    async def derive(self, pointer: PairPointer) -> None:
        """Move the docs alias and the slot's active adapter to the serving pair (idempotent)."""
        serving = pointer.serving
        if serving is None:
            return
        await anyio.to_thread.run_sync(self._serve_docs, pointer)
        crash_point("docs")
        if serving.get("adapter"):
            await self._serve_adapter(serving["adapter"], serving["release"])
        crash_point("adapter")

    def _serve_docs(self, pointer: PairPointer) -> None:
        assert pointer.serving is not None
        alias, docs = self.settings.qdrant.alias, self.stores.docs
        collection = pointer.serving["collection"]
        if docs.pointer_target(alias) != collection:
            docs.move_pointer(alias, collection)
        record = self.stores.state.release_record(collection)
        if record is not None and not record.kept:  # it joins the docs history, bounded
            record_release(self.stores, alias, record, self.settings.qdrant.keep_releases)
        held = docs.pointer_target(CANARY_POINTER)
        wanted = (pointer.canary or pointer.serving)["collection"]  # no canary: holds nothing
        if held not in (None, wanted) or (held is None and pointer.canary):
            docs.move_pointer(CANARY_POINTER, wanted)

    async def _serve_adapter(self, label: str, release: str) -> None:
        slot, _, version = label.partition("@")
        state = await anyio.to_thread.run_sync(self.registry.pointer, slot, True)
        if state.get("active") == version and not state.get("canary"):
            return
        async with self.swapper.exclusive(slot, f"release {release}"):
            state = await anyio.to_thread.run_sync(self.registry.pointer, slot, True)
            entry = {"action": "release", "version": version, "release": release,
                     "from": state.get("active"), "by": "tandem", "at": now_iso()}  # fmt: skip
            previous = state.get("active") if state.get("active") != version else None
            new = {"active": version, "canary": None, "previous": previous or state.get("previous"),
                   "history": [*state.get("history", []), entry]}  # fmt: skip
            await anyio.to_thread.run_sync(self.registry.save_pointer, slot, new)

    async def _promotable(self, release: str, force: bool, canary: float | None) -> ReleasePair:
        pair = await anyio.to_thread.run_sync(self.stores.state.release_pair, release)
        if pair is None:
            raise NotFound(f"no release {release!r}; plan it first (POST /v1/admin/releases)")
        if pair.status != "gated":
            why = pair.error or f"it is {pair.status}"
            raise Conflict(f"release {release} cannot be promoted: {why}")
        if not pair.gate.get("passed") and not force:
            raise GateFailed(release, pair.gate.get("violations") or ["no gate report"])
        current = await self._read()
        serving = current.serving["release"] if current.serving else None
        if current.canary and current.canary["release"] != release:
            raise Conflict(
                f"release {current.canary['release']} runs as a canary; promote it or roll it "
                "back first"
            )
        if serving == release:
            raise Conflict(f"release {release} already serves")
        if canary is not None and serving is None:
            raise Conflict("no release pair serves yet to compare a canary with; promote fully")
        if pair.collection not in await anyio.to_thread.run_sync(self.stores.docs.collections):
            raise Conflict(f"the docs of release {release} ({pair.collection}) no longer exist")
        return pair

    async def _rollback_target(self, current: PairPointer) -> dict[str, Any]:
        existing = set(await anyio.to_thread.run_sync(self.stores.docs.collections))
        for entry in current.kept[::-1]:
            if entry["collection"] in existing and self._adapter_exists(entry.get("adapter")):
                return entry
        raise Conflict("nothing to roll back to: no earlier release pair is kept")

    def _adapter_exists(self, label: str | None) -> bool:
        if label is None:
            return True
        slot, _, version = label.partition("@")
        try:
            self.registry.get(slot, version)
        except NotFound:
            return False
        return True

    async def _load(self, label: str | None) -> list[str]:
        """Load and probe the pair's adapter on every replica (nothing else changes)."""
        if label is None:
            return []
        adapter = self.adapter(label)
        await self.swapper.validate(adapter)
        return await self.swapper.load_everywhere(adapter)

    def adapter(self, label: str) -> AdapterVersion:
        slot, _, version = label.partition("@")
        return self.registry.get(slot, version)

    async def _read(self) -> PairPointer:
        return await anyio.to_thread.run_sync(self.stores.state.pair_pointer)

    async def _write(self, current: PairPointer, new: PairPointer) -> PairPointer:
        """Store `new` over `current` by compare-and-set; 409 when someone wrote meanwhile."""
        won = await anyio.to_thread.run_sync(
            self.stores.state.swap_pair_pointer, current.version, new
        )
        if not won:
            raise Conflict("another replica changed the release pointer meanwhile; retry")
        self.pointer.forget()
        return PairPointer.from_dict(new.value(), current.version + 1)


def _view(pointer: PairPointer) -> dict[str, Any]:
    return {
        "serving": pointer.serving,
        "canary": pointer.canary,
        "journal": pointer.journal[-1:] if pointer.pending is None else [pointer.pending],
    }
