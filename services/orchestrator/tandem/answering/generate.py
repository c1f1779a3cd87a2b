"""Stage 3 of a chat turn, generate: one async stream of text deltas, then the usage.

`Generator.start` sends the prompt to vLLM at once and buffers what comes back until the turn
reads it (`Generation.items`): the turn starts it as soon as the prompt is built, while the
outcome is still being decided, so the cross-encoder's time is spent during vLLM's prefill
rather than before it (on two cores vLLM's model runs on one by default and its other
processes poll; bench/bench_overhead.py measures what that saves). A turn that is not
`answered` cancels it (vLLM drops the request) and streams the house fallback sentence.

A whole (JSON) answer asks vLLM for the complete text and yields it as one delta: the same
filters read it, without per-token events nobody watches.

The generation owns the adapter's in-flight count from its first step to its last (one that
is cancelled stops counting at once), so a retired adapter version unloads only when unused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from tandem.adapters.inflight import InFlight
from tandem.answering.plan import Plan
from tandem.llm.client import Usage, VllmClient
from tandem.llm.pool import Reload, VllmPool
from tandem.rag.prompt import ChatMessage

Item = str | Usage


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


class Generation:
    """A generation running ahead of its reader: items wait in a queue until read.

    One nobody starts reading within `unread_s` (its client went away before the response
    body began) is cancelled then, so it neither generates to its end nor holds its adapter.
    """

    def __init__(self, source: AsyncIterator[Item], unread_s: float = 60.0) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._pump(source))
        self._reading = False
        self._abandon = loop.call_later(unread_s, self._cancel_unread)

    def _cancel_unread(self) -> None:
        if not self._reading:
            self._task.cancel()

    async def _pump(self, source: AsyncIterator[Item]) -> None:
        try:
            async for item in source:
                self._queue.put_nowait(item)
        except Exception as error:  # handed to the reader, raised where it reads
            self._queue.put_nowait(_Failed(error))
            return
        self._queue.put_nowait(_END)

    @property
    def done(self) -> bool:
        return self._task.done()

    async def items(self) -> AsyncIterator[Item]:
        self._reading = True
        self._abandon.cancel()
        try:
            while (item := await self._queue.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            await self.cancel()

    async def cancel(self) -> None:
        """Stop generating (vLLM drops the request when its stream closes)."""
        self._abandon.cancel()
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def fallback(sentence: str) -> AsyncIterator[Item]:
    """What a turn that is not `answered` streams instead of a generation."""
    yield sentence
    yield Usage(finish_reason="stop")


class Generator:
    def __init__(self, pool: VllmPool, in_flight: InFlight, unread_s: float = 60.0) -> None:
        self.pool = pool
        self.in_flight = in_flight
        self.unread_s = unread_s  # a generation nobody reads by then is cancelled

    def start(self, plan: Plan, messages: list[ChatMessage], whole: bool) -> Generation:
        return Generation(self._generate(plan, messages, whole), self.unread_s)

    async def _generate(
        self, plan: Plan, messages: list[ChatMessage], whole: bool
    ) -> AsyncIterator[Item]:
        reload = reload_for(plan)
        with self.in_flight.using(plan.model if plan.adapter else None):
            if whole:
                generation = await self.pool.chat(plan.model, messages, plan.generation, reload)
                yield generation.text
                yield replace(generation.usage, finish_reason=generation.finish_reason)
                return
            async for item in self.pool.chat_stream(plan.model, messages, plan.generation, reload):
                yield item


def reload_for(plan: Plan) -> Reload | None:
    """How to put the adapter back on a replica that lost it (it restarted)."""
    adapter = plan.adapter
    if adapter is None:
        return None

    async def reload(client: VllmClient) -> None:
        await client.load_adapter(adapter.served_name, str(adapter.path))

    return reload
