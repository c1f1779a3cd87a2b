"""The orchestrator adds nothing that serialises chats: concurrent chats reach vLLM together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.fakes import FakeVllm

from tandem.adapters.registry import AdapterRegistry
from tandem.answering.turn import ChatOptions, ChatService
from tandem.indexing.reindex import index_release
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import Retriever
from tandem.settings import PROJECT_ROOT, Settings
from tandem.stores.deployment import Stores

CHATS = 8


class Barrier(FakeVllm):
    """A vLLM that answers only once all `n` chats are inside it at the same time."""

    def __init__(self, n: int) -> None:
        super().__init__(loaded={"support-v1"}, usage=(5, 2))
        self.n = n
        self.inside = 0
        self.all_in = asyncio.Event()

    async def generating(self, body: dict[str, Any]) -> None:
        self.inside += 1
        if self.inside == self.n:
            self.all_in.set()
        # a serialising orchestrator never sends the n-th chat while the first one waits
        await asyncio.wait_for(self.all_in.wait(), timeout=20)


@pytest.mark.parametrize("retrieval", [True, False])
def test_concurrent_chats_reach_vllm_together(
    settings: Settings, registry: AdapterRegistry, store: Stores, retrieval: bool
) -> None:
    embedder = HashEmbedder(8)
    index_release(store, embedder, PROJECT_ROOT / "corpus" / "v4.2", "v4.2", "docs")
    registry.save_pointer("support", {"active": "v1"})
    vllm = Barrier(CHATS)
    service = ChatService(
        settings, Retriever(store, embedder, "docs", 8), registry, VllmPool([vllm.client(30)])
    )

    async def chats() -> list[str]:
        options = ChatOptions(retrieval=retrieval)
        answers = await asyncio.gather(
            *(
                service.answer([{"role": "user", "content": f"How do I export {i}?"}], options)
                for i in range(CHATS)
            )
        )
        return [a.text for a in answers]

    assert asyncio.run(chats()) == ["answer from support-v1"] * CHATS
    assert vllm.inside == CHATS
