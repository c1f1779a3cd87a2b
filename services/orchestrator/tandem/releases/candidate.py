"""A pair asked through the real chat path before it serves (the gate, the admin chat route).

The turn is the app's own `ChatService`, built over a retriever held to the pair's collection
and a registry that routes the pair's slot to the pair's version; everything else (outcome
decision, prompt, generation on the same vLLM pool, the checks) is what customers get. The
cross-encoder and the parser are loaded once and shared by every pair asked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tandem.adapters.registry import AdapterRegistry, AdapterVersion
from tandem.answering.outcome import QuestionReader
from tandem.answering.plan import BASE_ADAPTER, ChatOptions
from tandem.answering.services import make_cross_encoder, make_question_reader
from tandem.answering.turn import ChatService
from tandem.llm.pool import VllmPool
from tandem.rag.cross_encoder import PairScorer
from tandem.rag.retriever import Retrieval, Retriever
from tandem.releases.pointer import ServingPair
from tandem.settings import Settings

CACHED_PAIRS = 2  # a candidate and perhaps the one before it


class PinnedRetriever(Retriever):
    """Retrieves from one collection, whatever the serving pointer says."""

    def __init__(self, retriever: Retriever, collection: str) -> None:
        super().__init__(retriever.stores, retriever.embedder, retriever.alias, retriever.prefetch)
        self.collection = collection

    def retrieve(self, query: str, top_k: int, collection: str | None = None) -> Retrieval:
        return super().retrieve(query, top_k, collection or self.collection)


class PinnedRegistry(AdapterRegistry):
    """Routes `adapter`'s slot to `adapter`, active or not (other slots as usual)."""

    def __init__(self, registry: AdapterRegistry, adapter: AdapterVersion) -> None:
        super().__init__(registry.root, registry.state)
        self.adapter = adapter

    def route(self, slot: str, sticky_key: str | None) -> AdapterVersion:
        return self.adapter if slot == self.adapter.slot else super().route(slot, sticky_key)


class CandidateChats:
    """One chat service per pair asked (the newest few kept)."""

    def __init__(
        self, settings: Settings, retriever: Retriever, registry: AdapterRegistry, pool: VllmPool
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.registry = registry
        self.pool = pool
        self._chats: OrderedDict[str, ChatService] = OrderedDict()
        self._models: tuple[PairScorer | None, QuestionReader | None] | None = None
        self._lock = threading.Lock()

    def chat(self, pair: ServingPair) -> ChatService:
        """The chat service answering with `pair` (built on first use)."""
        with self._lock:
            key = f"{pair.release}\x00{pair.collection}\x00{pair.adapter}"
            if key not in self._chats:
                self._chats[key] = self._build(pair)
                while len(self._chats) > CACHED_PAIRS:
                    self._chats.popitem(last=False)
            self._chats.move_to_end(key)
            return self._chats[key]

    def options(self, pair: ServingPair) -> ChatOptions:
        """What a gate question asks for: the pair's slot (the base model without one)."""
        return ChatOptions(adapter=pair.slot or BASE_ADAPTER)

    def _build(self, pair: ServingPair) -> ChatService:
        if self._models is None:
            self._models = make_cross_encoder(self.settings), make_question_reader(self.settings)
        registry = self.registry
        if pair.slot is not None and pair.version is not None:
            registry = PinnedRegistry(registry, registry.get(pair.slot, pair.version))
        cross_encoder, reader = self._models
        retriever = PinnedRetriever(self.retriever, pair.collection)
        return ChatService(
            self.settings,
            retriever,
            registry,
            self.pool,
            cross_encoder=cross_encoder,
            reader=reader,
        )
