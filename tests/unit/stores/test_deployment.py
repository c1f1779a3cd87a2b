"""`open_stores` puts every shared record in one place: the data dir's SQLite file embedded,
the Qdrant server (here qdrant-client's local mode standing in) with TANDEM_QDRANT__URL."""

from __future__ import annotations

import time
from pathlib import Path

from qdrant_client import QdrantClient

from tandem.rag.prompt import ChatMessage
from tandem.settings import Settings
from tandem.stores.deployment import open_records, open_stores, qdrant_stores
from tandem.stores.feedback import AnswerRecord, FeedbackFilter, SqliteFeedbackLog
from tandem.stores.handoffs import HandoffFilter, HandoffRecord, SqliteHandoffStore
from tandem.stores.qdrant_records import QdrantFeedbackLog, QdrantHandoffStore


def answer(answer_id: str) -> AnswerRecord:
    conversation: list[ChatMessage] = [{"role": "user", "content": "How do I export?"}]
    return AnswerRecord(answer_id, time.time(), conversation, "Export.", [], None, "v4.2")


def handoff(answer_id: str) -> HandoffRecord:
    now = time.time()
    return HandoffRecord("h-" + answer_id, now, answer_id, "ana@example.com", "", [], {})


def test_embedded_records_live_in_the_data_dirs_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    stores = open_stores(settings, 8)
    assert isinstance(stores.answers, SqliteFeedbackLog)
    assert isinstance(stores.handoffs, SqliteHandoffStore)
    assert stores.hits is None  # one process: its own rate-limit bucket
    stores.answers.record_answer(answer("a1"))
    stores.handoffs.create(handoff("a1"))
    beside = open_records(settings)  # `tandem feedback` beside a running server
    beside.answers.rate("a1", "up", "")
    assert [i.answer.id for i in stores.answers.items(FeedbackFilter())] == ["a1"]
    assert [r.id for r in beside.handoffs.items(HandoffFilter())] == ["h-a1"]
    stores.close()


def test_server_records_live_in_qdrant_and_nothing_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    client = QdrantClient(":memory:")
    replica_a = qdrant_stores(client, settings, 8, shared_client=True)
    replica_b = qdrant_stores(client, settings, 8, shared_client=True)
    assert isinstance(replica_a.answers, QdrantFeedbackLog)
    assert isinstance(replica_a.handoffs, QdrantHandoffStore)
    replica_a.answers.record_answer(answer("a1"))
    replica_b.answers.rate("a1", "down", "")
    replica_b.handoffs.create(handoff("a1"))
    replica_a.close()  # the client is the caller's: replica B goes on
    assert [r.answer_id for r in replica_b.handoffs.items(HandoffFilter())] == ["a1"]
    assert [i.rating for i in replica_b.answers.items(FeedbackFilter())] == ["down"]
    assert not (tmp_path / "data").exists()
    client.close()
