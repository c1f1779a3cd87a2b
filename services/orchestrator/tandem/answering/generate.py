"""Stage 3 of a chat turn, generate: one async stream of text deltas, then the usage.

A whole (JSON) answer asks vLLM for the complete text and streams it as one delta: the same
filters read it, without the per-token events a customer who waits for the whole answer
would not see.

A turn that was not `answered` generates nothing: its stream is the house fallback sentence.
The stream owns the adapter's in-flight count from its first step to its last (a stream that
never starts never counts, one that is closed early stops counting at once), so a retired
adapter version is unloaded only once no answer is using it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from tandem.adapters.inflight import InFlight
from tandem.answering.ground import Grounds
from tandem.answering.plan import Plan
from tandem.llm.client import Usage, VllmClient
from tandem.llm.pool import Reload, VllmPool


class Generator:
    def __init__(self, pool: VllmPool, in_flight: InFlight) -> None:
        self.pool = pool
        self.in_flight = in_flight

    async def stream(
        self, plan: Plan, grounds: Grounds, whole: bool = False
    ) -> AsyncIterator[str | Usage]:
        if grounds.abstained:
            yield grounds.fallback()
            yield Usage(finish_reason="stop")
            return
        reload = reload_for(plan)
        with self.in_flight.using(plan.model if plan.adapter else None):
            if whole:
                generation = await self.pool.chat(
                    plan.model, grounds.messages, plan.generation, reload
                )
                yield generation.text
                yield replace(generation.usage, finish_reason=generation.finish_reason)
                return
            async for item in self.pool.chat_stream(
                plan.model, grounds.messages, plan.generation, reload
            ):
                yield item


def reload_for(plan: Plan) -> Reload | None:
    """How to put the adapter back on a replica that lost it (it restarted)."""
    adapter = plan.adapter
    if adapter is None:
        return None

    async def reload(client: VllmClient) -> None:
        await client.load_adapter(adapter.served_name, str(adapter.path))

    return reload
