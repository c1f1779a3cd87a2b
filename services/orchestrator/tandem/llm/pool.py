"""Every vLLM replica the orchestrator talks to, balanced round-robin over the healthy ones.

A replica that fails a request and then its health check is marked down and the request
moves to the next one (before any text was sent). A replica that answers "no such model"
(it restarted and lost its runtime adapters) gets the adapter loaded and the request again.
Each replica takes at most `max_in_flight` requests; vLLM batches those, and one more is
refused at once (503 + Retry-After) instead of waiting in an unbounded queue.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

from tandem.errors import DependencyDown, NotFound
from tandem.llm.client import Generation, Usage, VllmClient
from tandem.rag.prompt import ChatMessage
from tandem.settings import GenerationSettings, VllmSettings

Reload = Callable[[VllmClient], Awaitable[None]]
StreamItem = str | Usage


class VllmPool:
    """The vLLM replicas; `healthy` is refreshed by the background checker."""

    def __init__(self, clients: list[VllmClient], max_in_flight: int = 32) -> None:
        if not clients:
            raise ValueError("at least one vLLM endpoint is needed")
        self.clients = clients
        self.healthy: dict[str, bool] = {c.base_url: True for c in clients}
        self.max_in_flight = max_in_flight
        self.in_flight: Counter[str] = Counter()
        self._turn = itertools.count()

    @classmethod
    def from_settings(cls, settings: VllmSettings) -> VllmPool:
        clients = [
            VllmClient(url, settings.request_timeout_s, settings.api_key)
            for url in settings.endpoints()
        ]
        return cls(clients, settings.max_in_flight)

    def candidates(self) -> list[VllmClient]:
        """Healthy replicas with room, from the next round-robin turn (all down: all with room).

        Raises DependencyDown at once when every replica is full.
        """
        roomy = self._with_room()
        healthy = [c for c in roomy if self.healthy.get(c.base_url, True)]
        pool = healthy or roomy  # none known healthy: one may be back since the check
        start = next(self._turn) % len(pool)
        return pool[start:] + pool[:start]

    def require_serving(self) -> None:
        """Fail fast (503) when no replica is known healthy or every one is full."""
        if not any(self.healthy.values()):
            raise DependencyDown("no vLLM replica is up; retry shortly")
        self._with_room()

    def _with_room(self) -> list[VllmClient]:
        roomy = [c for c in self.clients if self.in_flight[c.base_url] < self.max_in_flight]
        if not roomy:
            raise DependencyDown(
                f"every vLLM replica has {self.max_in_flight} requests in flight", retry_after=2
            )
        return roomy

    @contextmanager
    def _slot(self, client: VllmClient) -> Iterator[None]:
        self.in_flight[client.base_url] += 1
        try:
            yield
        finally:
            self.in_flight[client.base_url] -= 1

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
                with self._slot(client):
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
            with self._slot(client):
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
                except DependencyDown:
                    await self._failed(client)  # down mid-stream: new chats get 503 at once
                    raise
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
