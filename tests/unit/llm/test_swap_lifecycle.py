"""The swap lifecycle against two fake replicas: all or nothing, one at a time, tidy after."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.fakes import FakeVllm

from tandem.adapters.inflight import InFlight
from tandem.adapters.registry import AdapterRegistry
from tandem.adapters.swap import AdapterSwapper
from tandem.adapters.upkeep import reconcile
from tandem.errors import AdapterInvalid, Conflict, DependencyDown, NotFound
from tandem.llm.pool import VllmPool
from tandem.settings import Settings


@pytest.fixture
def swapper(settings: Settings, registry: AdapterRegistry, pool: VllmPool) -> AdapterSwapper:
    return AdapterSwapper(settings, registry, pool, InFlight())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_activate_loads_everywhere_then_flips(
    swapper: AdapterSwapper, registry: AdapterRegistry, replicas: list[FakeVllm]
) -> None:
    run(reconcile(swapper))  # pins v3, loads it on both replicas
    assert registry.pointer("support", fresh=True)["active"] == "v3"
    assert all(r.loaded == {"support-v3"} for r in replicas)
    result = run(swapper.activate("support", "v1", 100, "ops"))
    assert (result["active"], result["previous"]) == ("v1", "v3")
    assert result["retiring"] == ["support-v3"]
    assert all("support-v1" in r.models_used for r in replicas)  # probed on each replica
    assert registry.pointer("support", fresh=True)["history"][-1]["by"] == "ops"
    run(swapper.collect())
    assert all(r.loaded == {"support-v1"} for r in replicas)


def test_a_refused_load_unloads_the_other_replica_and_changes_nothing(
    swapper: AdapterSwapper, registry: AdapterRegistry, replicas: list[FakeVllm]
) -> None:
    run(reconcile(swapper))
    replicas[1].refuse.add("support-v2")
    with pytest.raises(AdapterInvalid, match="vLLM refused"):
        run(swapper.activate("support", "v2", 100, "ops"))
    assert replicas[0].unloads == ["support-v2"]
    assert all(r.loaded == {"support-v3"} for r in replicas)
    assert registry.pointer("support", fresh=True)["active"] == "v3"


def test_a_replica_down_is_503_and_changes_nothing(
    swapper: AdapterSwapper, registry: AdapterRegistry, replicas: list[FakeVllm]
) -> None:
    run(reconcile(swapper))
    replicas[0].down = True
    with pytest.raises(DependencyDown, match="vllm-a"):
        run(swapper.activate("support", "v1", 100, "ops"))
    assert replicas[1].loaded == {"support-v3"}
    assert registry.pointer("support", fresh=True)["active"] == "v3"


def test_unknown_and_invalid_versions(swapper: AdapterSwapper, registry: AdapterRegistry) -> None:
    with pytest.raises(NotFound):
        run(swapper.activate("support", "v9", 100, "ops"))
    (registry.root / "support" / "v2" / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterInvalid, match="lacks"):
        run(swapper.activate("support", "v2", 100, "ops"))


def test_concurrent_activations_get_one_conflict(
    settings: Settings, registry: AdapterRegistry, pool: VllmPool, replicas: list[FakeVllm]
) -> None:
    for replica in replicas:
        replica.delay_s = 0.2  # the first swap is still probing when the second one starts
    other_replica = AdapterSwapper(
        settings, AdapterRegistry(registry.root, registry.state), pool, InFlight()
    )
    mine = AdapterSwapper(settings, registry, pool, InFlight())

    async def both(a: AdapterSwapper, b: AdapterSwapper) -> list[Any]:
        return await asyncio.gather(  # type: ignore[no-any-return]
            a.activate("support", "v1", 100, "a"),
            b.activate("support", "v2", 100, "b"),
            return_exceptions=True,
        )

    for first, second in ((mine, mine), (mine, other_replica)):
        registry.save_pointer("support", {"active": "v3"})  # both activations change something
        outcomes = run(both(first, second))
        assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
        assert sum(isinstance(o, dict) for o in outcomes) == 1


def test_canary_then_rollback_ends_it(
    swapper: AdapterSwapper, registry: AdapterRegistry, replicas: list[FakeVllm]
) -> None:
    run(reconcile(swapper))
    result = run(swapper.activate("support", "v2", 10, "ops"))
    assert result["canary"] == {"version": "v2", "percent": 10} and result["active"] == "v3"
    assert all(r.loaded == {"support-v2", "support-v3"} for r in replicas)
    result = run(swapper.rollback("support", "ops"))
    assert (result["active"], result["canary"], result["retiring"]) == ("v3", None, ["support-v2"])
    run(swapper.collect())
    assert all(r.loaded == {"support-v3"} for r in replicas)


def test_retired_versions_wait_for_requests_in_flight(
    swapper: AdapterSwapper, replicas: list[FakeVllm]
) -> None:
    run(reconcile(swapper))
    token = swapper.in_flight.enter("support-v3")
    run(swapper.activate("support", "v1", 100, "ops"))
    run(swapper.collect())
    assert all("support-v3" in r.loaded for r in replicas)  # still answering someone
    swapper.in_flight.leave(token)
    run(swapper.collect())
    assert all("support-v3" not in r.loaded for r in replicas)


def test_reconcile_restores_a_restarted_replica(
    swapper: AdapterSwapper, replicas: list[FakeVllm]
) -> None:
    run(reconcile(swapper))
    replicas[1].loaded.clear()  # vLLM restarted: runtime adapters are gone
    run(reconcile(swapper))
    assert replicas[1].loaded == {"support-v3"}


def test_a_swap_waits_for_upkeep_and_upkeep_skips_a_swap(
    swapper: AdapterSwapper, registry: AdapterRegistry
) -> None:
    async def upkeep(hold_s: float) -> None:
        async with swapper.exclusive("support", "unload", upkeep=True):
            await asyncio.sleep(hold_s)

    async def scenario() -> None:
        holding = asyncio.create_task(upkeep(0.5))
        await asyncio.sleep(0.3)  # upkeep holds the slot now: the swap waits, no 409
        assert (await swapper.activate("support", "v1", 100, "ops"))["active"] == "v1"
        await holding
        swap = asyncio.create_task(swapper.activate("support", "v2", 100, "ops"))
        while not swapper.busy("support"):  # every loop step: a swap is over in ~ms now
            await asyncio.sleep(0)
        with pytest.raises(Conflict):  # upkeep never waits for a swap
            await upkeep(0)
        await swap

    run(scenario())
    assert registry.pointer("support", fresh=True)["active"] == "v2"
