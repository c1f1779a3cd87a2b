"""Adapter swaps without restarts: load into every replica → probe → flip → unload when idle.

A failed load or probe unloads what this swap loaded and leaves the pointer alone. One swap
per slot at a time: an in-process lock plus a lease in the shared state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import anyio

from tandem.adapters.check import validate_adapter_folder
from tandem.adapters.inflight import InFlight
from tandem.adapters.lease import SwapLease
from tandem.adapters.registry import AdapterRegistry, AdapterVersion
from tandem.adapters.transitions import activation_state, rollback_state, serving_names
from tandem.adapters.versions import is_served_name_of
from tandem.errors import AdapterInvalid, Conflict, DependencyDown, TandemError
from tandem.llm.client import VllmClient
from tandem.llm.pool import VllmPool
from tandem.rag.prompt import ChatMessage
from tandem.settings import GenerationSettings, Settings

log = logging.getLogger("tandem.adapters")
LEASE_RETRIES, LEASE_RETRY_S = 20, 0.25
PROBE: list[ChatMessage] = [ChatMessage(role="user", content="Reply with the word OK.")]


class AdapterSwapper:
    """Activation, canary, rollback and the background upkeep of loaded adapters."""

    def __init__(
        self, settings: Settings, registry: AdapterRegistry, pool: VllmPool, in_flight: InFlight
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.in_flight = in_flight
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._retired: dict[str, float] = {}  # served name -> when it stopped serving
        self._tasks: set[asyncio.Task[None]] = set()
        self._swapping: set[str] = set()  # slots with a swap running or waiting for upkeep

    def busy(self, slot: str) -> bool:
        return slot in self._swapping or self._locks[slot].locked()

    async def activate(self, slot: str, version: str, percent: int, by: str) -> dict[str, Any]:
        """Serve `version` to `percent`% of the slot's conversations (100 ends any canary)."""
        target = self.registry.get(slot, version)
        await self.validate(target)
        async with self.exclusive(slot, f"activate {target.label} at {percent}%"):
            current, state = await self._current(slot)
            new_state = activation_state(state, current.version, version, percent, by)
            if new_state is None:
                return {**self.describe(slot), "changed": False}
            return await self._switch(slot, target, state, new_state)

    async def rollback(self, slot: str, by: str) -> dict[str, Any]:
        """End the canary if one runs, else go back to the previously active version."""
        self.registry.active(slot)  # 404 for an unknown slot
        async with self.exclusive(slot, "rollback"):
            current, state = await self._current(slot)
            known = [v.version for v in self.registry.versions(slot)]
            new_state = rollback_state(state, current.version, known, by)
            target = self.registry.get(slot, new_state["active"])
            await self.validate(target)
            return await self._switch(slot, target, state, new_state)

    async def _current(self, slot: str) -> tuple[AdapterVersion, dict[str, Any]]:
        """The active version and the fresh pointer (naming the active one even if unpinned)."""
        state = await anyio.to_thread.run_sync(self.registry.pointer, slot, True)
        current = self.registry.active(slot)
        return current, {**state, "active": current.version}

    def describe(self, slot: str) -> dict[str, Any]:
        state = self.registry.pointer(slot)
        return {
            "slot": slot,
            "active": self.registry.active(slot).version,
            "canary": state.get("canary"),
            "previous": state.get("previous"),
        }

    async def validate(self, adapter: AdapterVersion) -> None:
        """Check the version folder off the event loop (raises AdapterInvalid)."""
        settings = self.settings
        await anyio.to_thread.run_sync(
            validate_adapter_folder,
            adapter.path,
            settings.model.name,
            settings.vllm.max_lora_rank,
            settings.model_path,
        )

    @contextlib.asynccontextmanager
    async def exclusive(self, slot: str, purpose: str, upkeep: bool = False) -> AsyncIterator[None]:
        """One swap per slot, here and across replicas: a second swap gets 409 at once.

        Upkeep (pinning, unloading retired versions) is short: a swap waits for it, and
        upkeep itself is skipped (Conflict) while anything else holds the slot.
        """
        if not upkeep and slot in self._swapping:
            raise Conflict(f"an adapter swap of {slot!r} is already running; retry when it ends")
        lock = self._locks[slot]
        if upkeep and (lock.locked() or slot in self._swapping):
            raise Conflict(f"{slot!r} is busy")
        if not upkeep:
            self._swapping.add(slot)
        try:
            async with lock:
                lease = SwapLease(self.registry.state, f"adapter-swap:{slot}", self._lease_ttl())
                await self._take_lease(lease, slot, purpose, upkeep)
                try:
                    yield
                finally:
                    await anyio.to_thread.run_sync(lease.release)
        finally:
            if not upkeep:
                self._swapping.discard(slot)

    async def _take_lease(self, lease: SwapLease, slot: str, purpose: str, upkeep: bool) -> None:
        """The shared lease; a swap retries for a moment while another replica does upkeep."""
        kind, holder = ("upkeep" if upkeep else "swap"), None
        for _ in range(1 if upkeep else LEASE_RETRIES):
            holder = await anyio.to_thread.run_sync(lease.acquire, purpose, kind)
            if holder is None:
                return
            if upkeep or holder.get("kind") != "upkeep":
                break
            await asyncio.sleep(LEASE_RETRY_S)
        raise Conflict(
            f"another orchestrator is swapping {slot!r} ({(holder or {}).get('purpose')}); "
            "retry when it ends"
        )

    def _lease_ttl(self) -> float:
        return self.settings.adapter.lease_ttl_s

    async def _switch(
        self, slot: str, target: AdapterVersion, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        started = time.perf_counter()
        loaded_on = await self.load_everywhere(target)
        loaded = time.perf_counter()
        await anyio.to_thread.run_sync(self.registry.save_pointer, slot, new)
        retiring = sorted(serving_names(slot, old) - serving_names(slot, new))
        for name in serving_names(slot, new):
            self._retired.pop(name, None)
        if retiring:
            self._spawn(self._unload_when_idle(retiring))
        log.info("%s: %s now serves (canary %s)", slot, new["active"], new.get("canary"))
        return {
            **self.describe(slot),
            "changed": True,
            "loaded_on": loaded_on,
            "retiring": retiring,
            "seconds": round(time.perf_counter() - started, 3),
            "load_and_probe_seconds": round(loaded - started, 3),
        }

    async def load_everywhere(self, adapter: AdapterVersion) -> list[str]:
        """Load and probe on every replica (the pointer is not touched); on any failure unload
        what this call loaded. Returns the replicas' URLs."""
        await self.pool.refresh_health()
        down = [url for url, ok in self.pool.healthy.items() if not ok]
        if down:
            raise DependencyDown(f"vLLM replica(s) {', '.join(down)} down; nothing changed")
        clients = self.pool.clients
        results = await asyncio.gather(
            *(self._load_and_probe(c, adapter) for c in clients), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            fresh = [c for c, r in zip(clients, results, strict=True) if r is True]
            await asyncio.gather(*(_quiet_unload(c, adapter.served_name) for c in fresh))
            raise _worst(failures)
        return [c.base_url for c in clients]

    async def _load_and_probe(self, client: VllmClient, adapter: AdapterVersion) -> bool:
        """True when this call loaded the adapter (it was not loaded before)."""
        name = adapter.served_name
        fresh = name not in await client.served_models()
        try:
            if fresh:
                await client.load_adapter(name, str(adapter.path))
            await self._probe(client, name)
        except TandemError as error:
            if fresh:
                await _quiet_unload(client, name)
            raise await _blame(client, error, f"{adapter.label} on {client.base_url}") from error
        return fresh

    async def _probe(self, client: VllmClient, name: str) -> None:
        """A real, short generation with the adapter."""
        gen = GenerationSettings(
            max_tokens=self.settings.adapter.probe_max_tokens,
            temperature=0.0,
            top_p=1.0,
            repetition_penalty=1.0,
        )
        result = await client.chat(name, PROBE, gen)
        if result.usage.completion_tokens < 1:
            raise AdapterInvalid(f"the probe generation with {name} produced no tokens")

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unload_when_idle(self, names: list[str]) -> None:
        """After the grace period, wait for in-flight requests on `names`, then collect."""
        now = time.monotonic()
        for name in names:
            self._retired.setdefault(name, now)
        await asyncio.sleep(self.settings.adapter.unload_grace_s)
        deadline = time.monotonic() + self.settings.vllm.request_timeout_s
        while any(self.in_flight.count(n) for n in names) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        try:
            await self.collect()
        except TandemError as error:
            log.warning("unloading retired adapters: %s", error)

    async def collect(self) -> list[str]:
        """Unload retired versions past the grace period that no local request uses."""
        unloaded: list[str] = []
        for slot in self.registry.slots():
            idle = await self._idle_retired(slot)
            if not idle or self.busy(slot):
                continue
            with contextlib.suppress(Conflict):
                async with self.exclusive(slot, "unload retired versions", upkeep=True):
                    state = await anyio.to_thread.run_sync(self.registry.pointer, slot, True)
                    keep = serving_names(slot, state) | {self.registry.active(slot).served_name}
                    for client, name in idle:
                        if name not in keep:
                            await client.unload_adapter(name)
                            unloaded.append(f"{name}@{client.base_url}")
                    for name in {name for _, name in idle} - keep:
                        self._retired.pop(name, None)
        if unloaded:
            log.info("unloaded retired adapters: %s", ", ".join(unloaded))
        return unloaded

    async def _idle_retired(self, slot: str) -> list[tuple[VllmClient, str]]:
        serving = {v.served_name for v in self.registry.serving(slot)}
        grace, now = self.settings.adapter.unload_grace_s, time.monotonic()
        idle = []
        for client in self.pool.clients:
            if not self.pool.healthy.get(client.base_url):
                continue
            for name in await client.served_models():
                if name in serving:
                    self._retired.pop(name, None)  # serving again: its clock restarts later
                if not is_served_name_of(slot, name) or name in serving:
                    continue
                since = self._retired.setdefault(name, now)
                if now - since >= grace and self.in_flight.count(name) == 0:
                    idle.append((client, name))
        return idle

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _quiet_unload(client: VllmClient, name: str) -> None:
    try:
        await client.unload_adapter(name)
    except TandemError as error:  # the replica may be gone; the checker retries later
        log.warning("could not unload %s from %s: %s", name, client.base_url, error)


async def _blame(client: VllmClient, error: TandemError, what: str) -> TandemError:
    """A live replica that refuses the adapter means a bad adapter; a dead one is a 503."""
    if isinstance(error, AdapterInvalid):
        return AdapterInvalid(f"{what}: {error}")
    if await client.healthy():
        return AdapterInvalid(f"vLLM refused {what}: {error}; nothing changed")
    return DependencyDown(f"vLLM went down while loading {what}: {error}; nothing changed")


def _worst(failures: list[BaseException]) -> BaseException:
    """The error to report: anything unexpected first, then a replica down, then the adapter."""
    unexpected = [f for f in failures if not isinstance(f, TandemError)]
    down = [f for f in failures if isinstance(f, DependencyDown)]
    return (unexpected or down or failures)[0]
