"""Every vLLM replica the orchestrator talks to, balanced round-robin over the healthy ones."""

from __future__ import annotations

import itertools

from tandem.errors import DependencyDown
from tandem.llm.client import VllmClient
from tandem.settings import VllmSettings


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

    def pick(self) -> VllmClient:
        """The next healthy replica (or any replica when none is known healthy)."""
        candidates = [c for c in self.clients if self.healthy.get(c.base_url, True)]
        if not candidates:
            raise DependencyDown("no vLLM replica is healthy")
        return candidates[next(self._turn) % len(candidates)]

    async def refresh_health(self) -> None:
        for client in self.clients:
            self.healthy[client.base_url] = await client.healthy()

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
