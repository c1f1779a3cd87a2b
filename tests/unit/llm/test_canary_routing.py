"""Canary routing: a sticky share of conversations, counted per version, over the transport."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from qdrant_client import QdrantClient
from tests.fakes import FakeVllm

from tandem.adapters.overview import request_counts
from tandem.adapters.registry import AdapterRegistry, in_canary
from tandem.adapters.transitions import activation_state, rollback_state
from tandem.answering.turn import ChatOptions, ChatService
from tandem.errors import BadInput, Conflict
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.qdrant_docs import QdrantDocStore


def test_canary_share_is_close_to_the_percent_and_stable() -> None:
    keys = [f"conversation-{i}" for i in range(20_000)]
    share = sum(in_canary(k, "support", "v2", 10) for k in keys) / len(keys)
    assert 0.09 < share < 0.11
    assert [in_canary(k, "support", "v2", 10) for k in keys[:50]] == [
        in_canary(k, "support", "v2", 10) for k in keys[:50]
    ]
    assert not any(in_canary(k, "support", "v2", 0) for k in keys[:500])


def test_activation_and_rollback_states() -> None:
    state = activation_state({}, "v1", "v2", 10, "ops")
    assert state and state["active"] == "v1" and state["canary"] == {"version": "v2", "percent": 10}
    assert activation_state(state, "v1", "v2", 10, "ops") is None  # nothing would change
    with pytest.raises(BadInput):
        activation_state(state, "v1", "v1", 10, "ops")
    full = activation_state(state, "v1", "v2", 100, "ops")
    assert full and (full["active"], full["canary"], full["previous"]) == ("v2", None, "v1")
    assert [h["action"] for h in full["history"]] == ["canary", "activate"]
    back = rollback_state(full, "v2", ["v1", "v2"], "ops")
    assert (back["active"], back["previous"]) == ("v1", "v2")
    ended = rollback_state(state, "v1", ["v1", "v2"], "ops")
    assert ended["active"] == "v1" and ended["canary"] is None
    assert rollback_state({}, "v2", ["v1", "v2"], "ops")["active"] == "v1"  # the one below
    with pytest.raises(Conflict):
        rollback_state({}, "v1", ["v1", "v2"], "ops")


def chat_service(settings: Settings, registry: AdapterRegistry, pool: VllmPool) -> ChatService:
    stores = Stores(QdrantDocStore(QdrantClient(":memory:"), 8), registry.state)
    retriever = Retriever(stores, HashEmbedder(8), "docs", 8)
    return ChatService(settings, retriever, registry, pool)


def ask(service: ChatService, question: str, conversation_id: str | None = None) -> str:
    options = ChatOptions(retrieval=False, conversation_id=conversation_id)
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": "and then?"})
    answer = asyncio.run(service.answer(messages, options))  # type: ignore[arg-type]
    assert answer.plan.adapter is not None
    assert answer.text == f"answer from {answer.plan.adapter.served_name}"
    return answer.plan.adapter.label


def test_canary_requests_are_sticky_per_conversation(
    settings: Settings, registry: AdapterRegistry, pool: VllmPool, replicas: list[FakeVllm]
) -> None:
    for replica in replicas:
        replica.loaded |= {"support-v1", "support-v2"}
    registry.save_pointer("support", {"active": "v1", "canary": {"version": "v2", "percent": 30}})
    service = chat_service(settings, registry, pool)
    first = {f"c{i}": ask(service, "export?", f"c{i}") for i in range(40)}
    again = {f"c{i}": ask(service, "something else", f"c{i}") for i in range(40)}
    assert first == again  # the conversation id decides, not the message
    assert set(Counter(first.values())) == {"support@v1", "support@v2"}
    by_text = {ask(service, f"question {i}") for i in range(3)}
    assert by_text == {ask(service, f"question {i}") for i in range(3)}  # first turn decides
    used = Counter(m for r in replicas for m in r.models_used)
    assert used["support-v1"] and used["support-v2"]
    assert all(len(r.models_used) > 10 for r in replicas)  # balanced over both replicas


def test_errors_are_counted_per_version(
    settings: Settings, registry: AdapterRegistry, pool: VllmPool, replicas: list[FakeVllm]
) -> None:
    registry.save_pointer("support", {"active": "v3"})
    service = chat_service(settings, registry, pool)
    before = request_counts("support@v3")
    for replica in replicas:
        replica.loaded.add("support-v3")
        replica.down = True
    with pytest.raises(Exception, match="unreachable"):
        ask(service, "export?")
    assert request_counts("support@v3")["errors"] == before["errors"] + 1
    assert service.in_flight.count("support-v3") == 0


def test_a_replica_that_lost_the_adapter_gets_it_again(
    settings: Settings, registry: AdapterRegistry, pool: VllmPool, replicas: list[FakeVllm]
) -> None:
    registry.save_pointer("support", {"active": "v2"})
    service = chat_service(settings, registry, pool)
    assert ask(service, "export?") == "support@v2"  # replica had nothing loaded (restart)
    assert any("support-v2" in r.loaded for r in replicas)


def test_a_dead_replica_is_skipped(
    settings: Settings, registry: AdapterRegistry, pool: VllmPool, replicas: list[FakeVllm]
) -> None:
    registry.save_pointer("support", {"active": "v2"})
    replicas[0].down = True
    service = chat_service(settings, registry, pool)
    labels = {ask(service, f"q{i}") for i in range(4)}
    assert labels == {"support@v2"} and pool.healthy[replicas[0].url] is False


def test_store_is_shared_state(store: Stores, registry: AdapterRegistry) -> None:
    other = AdapterRegistry(registry.root, store.state)  # a second orchestrator replica
    registry.save_pointer("support", {"active": "v1"})
    assert other.pointer("support", fresh=True)["active"] == "v1"
