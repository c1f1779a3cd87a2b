"""The answer log and feedback contract, run over SQLite, Qdrant (qdrant-client's local mode,
which runs the server's filters and conditional writes in-process) and the in-memory fake."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tandem.errors import NotFound, TooLarge
from tandem.stores.feedback import (
    DAY_S,
    AnswerRecord,
    FeedbackFilter,
    FeedbackLog,
    InMemoryFeedbackLog,
    SqliteFeedbackLog,
    check_comment,
    summarise,
)
from tandem.stores.qdrant_records import QdrantFeedbackLog
from tandem.stores.sqlite import StateDatabase


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def record(
    answer_id: str, clock: Clock, adapter: str | None = "support@v3", release: str | None = "v4.2"
) -> AnswerRecord:
    return AnswerRecord(
        id=answer_id,
        created=clock.now,
        conversation=[{"role": "user", "content": f"question {answer_id}?"}],
        answer="Open Settings.\nSources: [1]",
        sources=[
            {"n": 1, "file": "a.md", "heading": "A", "release": "v4.2", "text": "t", "score": 0.5}
        ],
        adapter=adapter,
        release=release,
        collection="docs-v4.2",
    )


Factory = Callable[[Path, int, Clock], FeedbackLog]


def sqlite_log(tmp_path: Path, days: int, clock: Clock) -> FeedbackLog:
    return SqliteFeedbackLog(StateDatabase(tmp_path / "state.sqlite3"), days, clock)


def memory_log(tmp_path: Path, days: int, clock: Clock) -> FeedbackLog:
    return InMemoryFeedbackLog(days, clock)


def qdrant_log(tmp_path: Path, days: int, clock: Clock) -> FeedbackLog:
    return QdrantFeedbackLog(QdrantClient(":memory:"), days, clock)


@pytest.fixture(params=[sqlite_log, memory_log, qdrant_log], ids=["sqlite", "memory", "qdrant"])
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = request.param
    return factory


def test_rating_refers_to_the_logged_answer(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 30, clock)
    log.record_answer(record("a1", clock))
    log.rate("a1", "down", "wrong menu")
    (item,) = log.items(FeedbackFilter())
    assert (item.rating, item.comment, item.answer.question) == (
        "down",
        "wrong menu",
        "question a1?",
    )
    assert item.answer.sources[0]["text"] == "t" and item.answer.adapter == "support@v3"


def test_a_second_rating_replaces_the_first(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 30, clock)
    log.record_answer(record("a1", clock))
    log.rate("a1", "down", "")
    clock.now += 5
    log.rate("a1", "up", "actually fine")
    items = log.items(FeedbackFilter())
    assert [(i.rating, i.comment) for i in items] == [("up", "actually fine")]


def test_unknown_and_expired_answers_are_not_found(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 1, clock)
    log.record_answer(record("a1", clock))
    with pytest.raises(NotFound):
        log.rate("nope", "up", "")
    clock.now += 2 * DAY_S
    with pytest.raises(NotFound, match="retention"):
        log.rate("a1", "up", "")


def test_retention_zero_keeps_nothing(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 0, clock)
    log.record_answer(record("a1", clock))
    with pytest.raises(NotFound):
        log.rate("a1", "up", "")


def test_old_answers_are_purged_but_reviewed_ones_kept(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 1, clock)
    for answer_id in ("kept", "dropped"):
        log.record_answer(record(answer_id, clock))
        log.rate(answer_id, "down", "")
    log.review("kept", "Better answer.\nSources: [1]", True)
    clock.now += 2 * DAY_S
    log.record_answer(record("new", clock))  # writing purges what is past retention
    assert [i.answer.id for i in log.items(FeedbackFilter())] == ["kept"]


def test_filters_and_summary(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 30, clock)
    ratings = [
        ("a", "support@v3", "v4.2", "down"),
        ("b", "support@v3", "v4.2", "up"),
        ("c", None, "v4.1", "down"),
        ("d", "support@v2", None, "up"),
    ]
    for answer_id, adapter, release, rating in ratings:
        clock.now += 10
        log.record_answer(record(answer_id, clock, adapter, release))
        log.rate(answer_id, rating, "")  # type: ignore[arg-type]
    assert [i.answer.id for i in log.items(FeedbackFilter(rating="down"))] == ["c", "a"]
    assert [i.answer.id for i in log.items(FeedbackFilter(adapter="base"))] == ["c"]
    assert [i.answer.id for i in log.items(FeedbackFilter(release="none"))] == ["d"]
    assert [i.answer.id for i in log.items(FeedbackFilter(since=clock.now - 15))] == ["d", "c"]
    summary = summarise(log.items(FeedbackFilter()))
    assert (summary["ratings"], summary["down"], summary["down_share"]) == (4, 2, 0.5)
    assert summary["by_adapter"]["support@v3"] == {"ratings": 2, "down": 1, "down_share": 0.5}
    assert summary["by_adapter"]["base"]["down_share"] == 1.0
    assert summary["by_release"]["v4.1"] == {"ratings": 1, "down": 1, "down_share": 1.0}


def test_review_needs_a_rating_and_keeps_through_re_rating(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 30, clock)
    log.record_answer(record("a1", clock))
    with pytest.raises(NotFound):
        log.review("a1", None, True)
    log.rate("a1", "down", "")
    item = log.review("a1", "Fixed.\nSources: [1]", True)
    assert item.corrected == "Fixed.\nSources: [1]" and item.reviewed
    log.rate("a1", "down", "still bad")
    (again,) = log.items(FeedbackFilter(reviewed=True))
    assert again.corrected == "Fixed.\nSources: [1]" and again.comment == "still bad"
    assert log.items(FeedbackFilter(reviewed=False)) == []


def test_comment_cap_is_413() -> None:
    assert check_comment("ok", 5) == "ok"
    with pytest.raises(TooLarge):
        check_comment("x" * 6, 5)


def test_sqlite_log_persists_and_takes_concurrent_ratings(tmp_path: Path) -> None:
    clock = Clock()
    log = sqlite_log(tmp_path, 30, clock)
    log.record_answer(record("a1", clock))
    threads = [
        threading.Thread(target=log.rate, args=("a1", "down" if n % 2 else "up", f"c{n}"))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = sqlite_log(tmp_path, 30, clock)  # a restart: a new object on the same file
    (item,) = reopened.items(FeedbackFilter())
    assert item.comment in {f"c{n}" for n in range(8)}


def test_a_correction_alone_makes_an_item_reviewed(make: Factory, tmp_path: Path) -> None:
    clock = Clock()
    log = make(tmp_path, 1, clock)
    for answer_id in ("corrected", "approved", "neither"):
        log.record_answer(record(answer_id, clock))
        log.rate(answer_id, "down", "")
    log.review("corrected", "Better.\nSources: [1]", False)
    log.review("approved", None, True)
    reviewed = log.items(FeedbackFilter(reviewed=True))
    assert sorted(i.answer.id for i in reviewed) == ["approved", "corrected"]
    assert [i.answer.id for i in log.items(FeedbackFilter(reviewed=False))] == ["neither"]
    clock.now += 2 * DAY_S
    log.record_answer(record("new", clock))  # both reviewed items outlive retention
    assert sorted(i.answer.id for i in log.items(FeedbackFilter())) == ["approved", "corrected"]


def test_replicas_on_one_qdrant_share_the_log_and_a_restart_keeps_it(tmp_path: Path) -> None:
    clock = Clock()
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    replica_a, replica_b = (QdrantFeedbackLog(client, 30, clock) for _ in range(2))
    replica_a.record_answer(record("a1", clock))
    replica_b.rate("a1", "down", "wrong menu")  # a replica that did not give the answer
    replica_b.review("a1", "Open Billing.\nSources: [1]", True)
    client.close()
    reopened = QdrantClient(path=str(tmp_path / "qdrant"))  # every pod replaced
    (item,) = QdrantFeedbackLog(reopened, 30, clock).items(FeedbackFilter(reviewed=True))
    assert (item.answer.id, item.comment, item.corrected) == (
        "a1",
        "wrong menu",
        "Open Billing.\nSources: [1]",
    )
    assert item.answer.sources[0]["text"] == "t" and item.answer.collection == "docs-v4.2"
    reopened.close()
