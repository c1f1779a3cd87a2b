"""The compare-and-set every conditional write of the Qdrant records uses (local mode)."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import QdrantClient

from tandem.errors import Conflict
from tandem.stores import qdrant_points as points

COLLECTION = "records"


@pytest.fixture
def client() -> QdrantClient:
    client = QdrantClient(":memory:")
    points.ensure_collection(client, COLLECTION, {"n": points.INTEGER})
    points.ensure_collection(client, COLLECTION, {"n": points.INTEGER})  # a second replica
    return client


def test_a_write_from_a_stale_read_loses(client: QdrantClient) -> None:
    pid = points.point_id(COLLECTION, "r1")
    points.insert(client, COLLECTION, pid, {"n": 1})
    seen = points.read(client, COLLECTION, pid)
    assert seen is not None
    won = points.swap(client, COLLECTION, pid, seen, {"n": 2})
    assert won is not None and won["n"] == 2
    assert points.swap(client, COLLECTION, pid, seen, {"n": 3}) is None  # `seen` is stale
    assert points.read(client, COLLECTION, pid) == won


def test_insert_never_overwrites(client: QdrantClient) -> None:
    pid = points.point_id(COLLECTION, "r1")
    points.insert(client, COLLECTION, pid, {"n": 1})
    points.insert(client, COLLECTION, pid, {"n": 9})
    stored = points.read(client, COLLECTION, pid)
    assert stored is not None and stored["n"] == 1


def test_update_reads_again_after_a_rival_wrote(client: QdrantClient) -> None:
    pid = points.point_id(COLLECTION, "r1")
    points.insert(client, COLLECTION, pid, {"n": 1})
    rounds: list[int] = []

    def add_one(seen: dict[str, Any]) -> dict[str, Any]:
        rounds.append(seen["n"])
        if len(rounds) == 1:  # another replica's write lands between this read and write
            rival = points.read(client, COLLECTION, pid)
            assert rival is not None
            points.swap(client, COLLECTION, pid, rival, {"n": 10})
        return {"n": seen["n"] + 1}

    def read_it() -> dict[str, Any]:
        stored = points.read(client, COLLECTION, pid)
        assert stored is not None
        return stored

    stored = points.update(client, COLLECTION, pid, read_it, add_one, "r1")
    assert rounds == [1, 10] and stored["n"] == 11  # the rival's write was not lost


def test_update_gives_up_with_a_conflict(client: QdrantClient) -> None:
    pid = points.point_id(COLLECTION, "r1")
    points.insert(client, COLLECTION, pid, {"n": 1})

    def always_beaten(seen: dict[str, Any]) -> dict[str, Any]:
        points.swap(client, COLLECTION, pid, seen, {"n": seen["n"] + 100})
        return {"n": -1}

    def read_it() -> dict[str, Any]:
        stored = points.read(client, COLLECTION, pid)
        assert stored is not None
        return stored

    with pytest.raises(Conflict, match="kept changing"):
        points.update(client, COLLECTION, pid, read_it, always_beaten, "r1")
