"""Every vLLM replica the orchestrator talks to, balanced round-robin over the healthy ones.

A replica that fails a request and then its health check is marked down and the request
moves to the next one (before any text was sent). A replica that answers "no such model"
(it restarted and lost its runtime adapters) gets the adapter loaded and the request again.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from tandem.errors import DependencyDown, NotFound
from tandem.llm.client import Generation, Usage, VllmClient
from tandem.rag.prompt import ChatMessage
from tandem.settings import GenerationSettings, VllmSettings

Reload = Callable[[VllmClient], Awaitable[None]]
StreamItem = str | Usage


class VllmPool:
    """The vLLM replicas; `healthy` is refreshed by the background checker."""

    def __init__(self, clients: list[VllmClient]) -> None:
        if not clients:
            raise ValueError("at least one vLLM endpoint is needed")
        self.clients = clients
        self.healthy: dict[str, bool] = {c.base_url: True for c in clients}
        self._turn = itertools.count()

    @classmethod
    def from_settings(cls, settings: VllmSettings) -> VllmPool:
        return cls(
            [
                VllmClient(url, settings.request_timeout_s, settings.api_key)
                for url in settings.endpoints()
            ]
        )

    def candidates(self) -> list[VllmClient]:
        """Healthy replicas starting at the next round-robin turn (all when none is healthy)."""
        healthy = [c for c in self.clients if self.healthy.get(c.base_url, True)]
        pool = healthy or self.clients  # none known healthy: one may be back since the check
        start = next(self._turn) % len(pool)
        return pool[start:] + pool[:start]

    def pick(self) -> VllmClient:
        """The next healthy replica (or any replica when none is known healthy)."""
        return self.candidates()[0]

    async def refresh_health(self) -> None:
        for client in self.clients:
            self.healthy[client.base_url] = await client.healthy()

    async def _failed(self, client: VllmClient) -> bool:
        """After an error: True (and marked down) when the replica itself is gone."""
        alive = await client.healthy()
        self.healthy[client.base_url] = alive
        return not alive

    async def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        gen: GenerationSettings,
        reload: Reload | None = None,
    ) -> Generation:
        """One complete answer from the first replica that can give it."""
        error: DependencyDown | None = None
        for client in self.candidates():
            try:
                try:
                    return await client.chat(model, messages, gen)
                except NotFound:
                    if reload is None:
                        raise
                    await reload(client)
                    return await client.chat(model, messages, gen)
            except DependencyDown as down:
                if not await self._failed(client):
                    raise
                error = down
        raise error or DependencyDown("no vLLM replica could answer")

    async def chat_stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        gen: GenerationSettings,
        reload: Reload | None = None,
    ) -> AsyncIterator[StreamItem]:
        """Deltas then usage; fails over to another replica only before the first item."""
        error: DependencyDown | None = None
        for client in self.candidates():
            try:
                stream, first = await _open(client, model, messages, gen, reload)
            except DependencyDown as down:
                if not await self._failed(client):
                    raise
                error = down
                continue
            try:
                if first is not None:
                    yield first
                async for item in stream:
                    yield item
            finally:
                if (close := getattr(stream, "aclose", None)) is not None:
                    await close()
            return
        raise error or DependencyDown("no vLLM replica could answer")

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _open(
    client: VllmClient,
    model: str,
    messages: Sequence[ChatMessage],
    gen: GenerationSettings,
    reload: Reload | None,
) -> tuple[AsyncIterator[StreamItem], StreamItem | None]:
    """Start a stream and wait for its first item; reload the adapter once if it is missing."""
    for attempt in range(2):
        stream = client.chat_stream(model, messages, gen)
        try:
            return stream, await anext(stream)
        except StopAsyncIteration:
            return stream, None
        except NotFound:
            if reload is None or attempt:
                raise
            await reload(client)
    raise NotFound(f"{model} is not loaded on {client.base_url}")
