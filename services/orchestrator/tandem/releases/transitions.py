"""How the pair pointer changes on promote, canary and rollback (pure functions).

Every change is three writes of the one pointer record, each a compare-and-set:

1. `begin`: the journal's `pending` entry says what is about to happen; nothing serves
   differently yet. A crash after it is undone at the next start (`abort`).
2. `switch`: serving / canary / kept change and `pending.step` becomes "switched", in the
   same write. This is the commit: every turn reads its pair from this record, so from here
   on every answer names the new pair, and never half of it.
3. `finish`: after the derived pointers (the `docs` alias, the slot's active adapter) were
   moved to match, `pending` moves into the journal. A crash before it is finished at the
   next start (the derived moves are idempotent).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from tandem.adapters.transitions import now_iso
from tandem.errors import Conflict
from tandem.stores.state import PairPointer

JOURNAL_KEPT = 100
BEGUN, SWITCHED = "begun", "switched"
PROMOTE, CANARY, ROLLBACK = "promote", "canary", "rollback"


def window(pointer: PairPointer) -> str | None:
    """The comparison the pairs' counts belong to: the canary's, else the serving pair's."""
    entry = pointer.canary or pointer.serving
    return f"{entry['release']}@{entry.get('since', 0)}" if entry else None


def begin(
    pointer: PairPointer, op: str, target: dict[str, Any] | None, by: str, **details: Any
) -> PairPointer:
    """The pointer with `op` pending (`target`: the pair entry it moves to, if any)."""
    if pointer.pending is not None:
        pending = pointer.pending
        raise Conflict(
            f"a release {pending['op']} of {pending.get('to')} is under way since "
            f"{pending['at']}; retry when it has finished"
        )
    pending = {
        "op": op,
        "to": target["release"] if target else None,
        "from": pointer.serving["release"] if pointer.serving else None,
        "target": target,
        "step": BEGUN,
        "by": by,
        "at": now_iso(),
        "started": time.time(),
        **details,
    }
    return dataclasses.replace(pointer, pending=pending)


def switch(pointer: PairPointer, keep: int) -> PairPointer:
    """The commit of the pending change: who serves, the canary, the pairs kept."""
    pending = pointer.pending
    if pending is None or pending["step"] != BEGUN:
        raise Conflict("no release change is waiting to be switched")
    target, since = pending["target"], time.time()
    serving, canary, kept = pointer.serving, pointer.canary, list(pointer.kept)
    if pending["op"] == CANARY:
        canary = {**target, "share": pending["share"], "since": since}
    elif pending["op"] == PROMOTE:
        before = serving or pending.get("replaces")  # the first pair replaces what served
        if before is not None and before["release"] != target["release"]:
            kept = [e for e in kept if e["release"] != before["release"]] + [_plain(before)]
        serving, canary = {**_plain(target), "since": since}, None
    elif canary is not None:  # a rollback ends the canary first
        canary = None
    else:
        serving = {**_plain(target), "since": since}
    kept = [e for e in kept if serving is None or e["release"] != serving["release"]][-keep:]
    return dataclasses.replace(
        pointer,
        serving=serving,
        canary=canary,
        kept=kept,
        pending={**pending, "step": SWITCHED, "switched": now_iso()},
    )


def finish(pointer: PairPointer, result: str) -> PairPointer:
    """The pending change, done, moved into the journal."""
    return _close(pointer, "done", result)


def abort(pointer: PairPointer, result: str) -> PairPointer:
    """The pending change, never switched, moved into the journal as aborted."""
    return _close(pointer, "aborted", result)


def _close(pointer: PairPointer, step: str, result: str) -> PairPointer:
    if pointer.pending is None:
        return pointer
    entry = {k: v for k, v in pointer.pending.items() if k not in {"target", "started"}}
    entry.update(step=step, result=result, finished=now_iso())
    journal = [*pointer.journal, entry][-JOURNAL_KEPT:]
    return dataclasses.replace(pointer, pending=None, journal=journal)


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    """A pair entry without the canary's or the serving pair's own bookkeeping."""
    return {k: entry.get(k) for k in ("release", "collection", "docs_release", "adapter")}
