"""The background check: every serving adapter loaded on every healthy replica, retired ones not.

It runs at startup and every `TANDEM_ADAPTER__CHECK_INTERVAL_S`, so a vLLM replica that
restarted (and so lost its runtime-loaded adapters) gets them back on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio

from tandem.adapters.swap import AdapterSwapper
from tandem.adapters.transitions import now_iso
from tandem.errors import Conflict, TandemError

log = logging.getLogger("tandem.adapters")


async def reconcile(swapper: AdapterSwapper) -> None:
    """Pin unset pointers, restore serving versions on every healthy replica, collect retired."""
    await swapper.pool.refresh_health()
    for slot in swapper.registry.slots():
        try:
            await pin_if_unset(swapper, slot)
            await restore(swapper, slot)
        except TandemError as error:
            log.warning("adapter check of %r: %s", slot, error)
    await swapper.collect()


async def pin_if_unset(swapper: AdapterSwapper, slot: str) -> None:
    """Write the implicit choice (the newest version) into the pointer, so it stays put."""
    registry = swapper.registry
    if (await anyio.to_thread.run_sync(registry.pointer, slot, True)).get("active"):
        return
    if swapper.busy(slot):
        return
    with contextlib.suppress(Conflict):
        async with swapper.exclusive(slot, "pin the active version", upkeep=True):
            state = await anyio.to_thread.run_sync(registry.pointer, slot, True)
            if state.get("active"):
                return
            newest = registry.versions(slot)[-1].version
            entry = {"action": "pin", "version": newest, "by": "tandem", "at": now_iso()}
            pinned = {"active": newest, "canary": None, "previous": None, "history": [entry]}
            await anyio.to_thread.run_sync(registry.save_pointer, slot, pinned)
            log.info("%s: pinned %s as the active version", slot, newest)


async def restore(swapper: AdapterSwapper, slot: str) -> None:
    """Load every version the slot serves into each healthy replica that lacks it."""
    wanted = swapper.registry.serving(slot)
    for adapter in wanted:
        await swapper.validate(adapter)
    for client in swapper.pool.clients:
        if not swapper.pool.healthy.get(client.base_url):
            continue
        try:
            served = set(await client.served_models())
            for adapter in wanted:
                if adapter.served_name not in served:
                    await client.load_adapter(adapter.served_name, str(adapter.path))
                    log.info("loaded %s into %s", adapter.label, client.base_url)
        except TandemError as error:
            log.warning("restoring %s adapters on %s: %s", slot, client.base_url, error)


async def keep_adapters_loaded(swapper: AdapterSwapper, interval_s: float) -> None:
    """Run `reconcile` forever, every `interval_s` seconds."""
    while True:
        try:
            await reconcile(swapper)
        except Exception:  # the check must outlive any one bad round
            log.exception("adapter check failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
