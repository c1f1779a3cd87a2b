"""The answer log, feedback, handoffs and rate-limit hits in Qdrant, for orchestrator replicas
sharing a server.

With TANDEM_QDRANT__URL every replica reads and writes these records in the Qdrant they
already share, so feedback and a handoff reach the answer whichever replica gave it, and a
pod's data volume keeps nothing that a rolling update could lose. Each record is one
vector-less point in its collection (`tandem_answers`, `tandem_handoffs`,
`tandem_rate_hits`), its fields as
payload so the admin filters and the retention purge run in Qdrant. A rating attaches to
its answer's point with `set_payload` of its own fields, so a review and a re-rating never
overwrite each other; writes that must not race (a review, a delivery worker's claim, an
attempt's result, an operator's retry) are compare-and-sets (`qdrant_points.swap`).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from qdrant_client import QdrantClient, models

from tandem.stores import qdrant_points as points
from tandem.stores.docs import store_reads
from tandem.stores.feedback import (
    DAY_S,
    AnswerRecord,
    Clock,
    FeedbackFilter,
    FeedbackItem,
    Rating,
    adapter_key,
    no_rating,
    release_key,
    unknown_answer,
)
from tandem.stores.handoffs import (
    HandoffFilter,
    HandoffRecord,
    Status,
    delivered_already,
    missing_handoff,
)
from tandem.stores.qdrant_points import BOOL, FLOAT, INTEGER, KEYWORD, Payload, empty, is_, within

ANSWERS = "tandem_answers"
HANDOFFS = "tandem_handoffs"
HITS = "tandem_rate_hits"
_ANSWER_FIELDS = [f.name for f in dataclasses.fields(AnswerRecord)]
_HANDOFF_FIELDS = [f.name for f in dataclasses.fields(HandoffRecord)]


# Setting a field to null removes it (the server's merge, and local mode's): read with .get
def _answer(payload: Payload) -> AnswerRecord:
    fields: Payload = {name: payload.get(name) for name in _ANSWER_FIELDS}
    return AnswerRecord(**fields)


def _item(payload: Payload) -> FeedbackItem:
    return FeedbackItem(
        _answer(payload),
        payload["rating"],
        payload["comment"],
        payload["rated"],
        payload.get("corrected"),
        bool(payload.get("approved")),
    )


def _reviewed() -> models.Filter:
    return models.Filter(
        should=[is_("approved", True), models.Filter(must_not=[empty("corrected")])]
    )


def _feedback_filter(filters: FeedbackFilter) -> models.Filter:
    equal = {"rating": filters.rating, "adapter_key": filters.adapter,
             "release_key": filters.release}  # fmt: skip
    must = points.matching(equal, "rated", filters.since)
    must_not: list[models.Condition] = [empty("rating")]  # rated answers only
    if filters.reviewed is True:
        must.append(_reviewed())
    elif filters.reviewed is False:
        must_not.append(_reviewed())
    return models.Filter(must=must, must_not=must_not)


class _Kept:
    """Records of one kind in their own collection, kept `retention_days`."""

    collection: str
    indexes: dict[str, models.PayloadSchemaType]

    def __init__(self, client: QdrantClient, retention_days: int, clock: Clock = time.time) -> None:
        self.client = client
        self.retention_s = retention_days * DAY_S
        self.clock = clock
        points.ensure_collection(client, self.collection, self.indexes)

    def _pid(self, key: str) -> str:
        return points.point_id(self.collection, key)


class QdrantFeedbackLog(_Kept):
    """`FeedbackLog` in the collection `tandem_answers`: one point an answer, its rating and
    review as fields of that point."""

    collection = ANSWERS
    indexes = {"created": FLOAT, "rated": FLOAT, "rating": KEYWORD, "adapter_key": KEYWORD,
               "release_key": KEYWORD, "approved": BOOL}  # fmt: skip

    def _cutoff(self) -> float:
        return self.clock() - self.retention_s

    @store_reads
    def record_answer(self, record: AnswerRecord) -> None:
        if self.retention_s <= 0:
            return
        # what is past retention goes, unless an agent reviewed it (training material)
        expired = models.Filter(must=[within("created", lt=self._cutoff())], must_not=[_reviewed()])
        points.delete_where(self.client, ANSWERS, expired)
        payload = {**dataclasses.asdict(record), "adapter_key": adapter_key(record),
                   "release_key": release_key(record), "approved": False}  # fmt: skip
        points.insert(self.client, ANSWERS, self._pid(record.id), payload)

    def _logged(self, answer_id: str) -> Payload:
        payload = points.read(self.client, ANSWERS, self._pid(answer_id))
        if payload is None or payload["created"] < self._cutoff():
            raise unknown_answer(answer_id)
        return payload

    @store_reads
    def answer(self, answer_id: str) -> AnswerRecord:
        return _answer(self._logged(answer_id))

    @store_reads
    def rate(self, answer_id: str, rating: Rating, comment: str) -> None:
        self._logged(answer_id)
        rated = {"rating": rating, "comment": comment, "rated": self.clock()}
        only = models.Filter(must=[points.has_id(self._pid(answer_id))])
        self.client.set_payload(ANSWERS, rated, points=only, wait=True, ordering=points.STRONG)

    @store_reads
    def review(self, answer_id: str, corrected: str | None, approved: bool) -> FeedbackItem:
        def rated() -> Payload:
            seen = points.read(self.client, ANSWERS, self._pid(answer_id))
            if seen is None or seen.get("rating") is None:
                raise no_rating(answer_id)
            return seen

        def reviewed(seen: Payload) -> Payload:
            kept = corrected if corrected is not None else seen.get("corrected")
            return {"corrected": kept, "approved": approved}

        pid, what = self._pid(answer_id), f"the feedback on answer {answer_id!r}"
        return _item(points.update(self.client, ANSWERS, pid, rated, reviewed, what))

    @store_reads
    def items(self, filters: FeedbackFilter) -> list[FeedbackItem]:
        found = points.scroll_all(self.client, ANSWERS, _feedback_filter(filters))
        return sorted((_item(p) for p in found), key=lambda i: i.rated, reverse=True)


def _handoff(payload: Payload) -> HandoffRecord:
    fields: Payload = {name: payload.get(name) for name in _HANDOFF_FIELDS}
    return HandoffRecord(**fields)


def _handoff_filter(filters: HandoffFilter) -> models.Filter:
    equal = {"status": filters.status, "release": filters.release, "adapter": filters.adapter}
    return models.Filter(must=points.matching(equal, "created", filters.since))


class QdrantHandoffStore(_Kept):
    """`HandoffStore` in the collection `tandem_handoffs`: one point a handoff."""

    collection = HANDOFFS
    indexes = {"created": FLOAT, "next_attempt": FLOAT, "status": KEYWORD, "release": KEYWORD,
               "adapter": KEYWORD}  # fmt: skip

    def _stored(self, handoff_id: str) -> Payload:
        payload = points.read(self.client, HANDOFFS, self._pid(handoff_id))
        if payload is None:
            raise missing_handoff(handoff_id)
        return payload

    @store_reads
    def create(self, record: HandoffRecord) -> None:
        if self.retention_s > 0:
            expired = within("created", lt=self.clock() - self.retention_s)
            points.delete_where(self.client, HANDOFFS, models.Filter(must=[expired]))
        payload = {**dataclasses.asdict(record), "outcome": record.outcome,
                   "release": record.release, "adapter": record.adapter}  # fmt: skip
        points.insert(self.client, HANDOFFS, self._pid(record.id), payload)

    @store_reads
    def get(self, handoff_id: str) -> HandoffRecord:
        return _handoff(self._stored(handoff_id))

    @store_reads
    def items(self, filters: HandoffFilter, limit: int = 1000) -> list[HandoffRecord]:
        found = points.scroll_all(self.client, HANDOFFS, _handoff_filter(filters))
        return sorted(map(_handoff, found), key=lambda r: r.created, reverse=True)[:limit]

    @store_reads
    def claim_due(self, now: float, hold_s: float, limit: int) -> list[HandoffRecord]:
        due_now: list[models.Condition] = [
            is_("status", "pending"),
            within("next_attempt", lte=now),
        ]
        found = points.scroll_all(self.client, HANDOFFS, models.Filter(must=due_now))
        due = sorted(map(_handoff, found), key=lambda r: r.next_attempt)[:limit]
        if not due:
            return []
        ids = [self._pid(r.id) for r in due]
        token = points.new_token()
        # one conditional write for the batch: a handoff another worker claimed first is
        # no longer due, so it is left alone; the token read back says which ones are ours
        self.client.set_payload(
            HANDOFFS,
            {"next_attempt": now + hold_s, "token": token},
            points=models.Filter(must=[points.has_id(*ids), *due_now]),
            wait=True,
            ordering=points.STRONG,
        )
        ours = {
            p["id"] for p in points.read_many(self.client, HANDOFFS, ids) if p["token"] == token
        }
        return [r for r in due if r.id in ours]

    @store_reads
    def finish_attempt(
        self, handoff_id: str, status: Status, error: str | None, next_attempt: float, now: float
    ) -> HandoffRecord:
        def attempted(seen: Payload) -> Payload | None:
            if seen["status"] != "pending":  # a late result changes nothing
                return None
            return {
                "status": status,
                "attempts": seen["attempts"] + 1,
                "last_error": error if error is not None else seen.get("last_error"),
                "next_attempt": next_attempt,
                "delivered": now if status == "delivered" else None,
            }

        return self._update(handoff_id, attempted)

    @store_reads
    def retry(self, handoff_id: str, now: float) -> HandoffRecord:
        def due_again(seen: Payload) -> Payload:
            if seen["status"] == "delivered":
                raise delivered_already(handoff_id)
            return {"status": "pending", "attempts": 0, "next_attempt": now}

        return self._update(handoff_id, due_again)

    def _update(
        self, handoff_id: str, change: Callable[[Payload], Payload | None]
    ) -> HandoffRecord:
        pid, what = self._pid(handoff_id), f"handoff {handoff_id!r}"
        stored = points.update(
            self.client, HANDOFFS, pid, lambda: self._stored(handoff_id), change, what
        )
        return _handoff(stored)


class QdrantHitCounter:
    """`HitCounter` (`tandem.stores.rate_windows`) in `tandem_rate_hits`: a point a request."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self.swept = 0  # windows before this one's predecessor are gone
        points.ensure_collection(client, HITS, {"key": KEYWORD, "window": INTEGER})

    @store_reads
    def hit(self, key: str, window: int) -> int:
        if window > self.swept:
            self.swept = window
            old = models.Filter(must=[within("window", lt=window - 1)])
            self.client.delete(HITS, models.FilterSelector(filter=old), wait=False)
        payload = {"key": key, "window": window}
        point = models.PointStruct(id=str(uuid.uuid4()), vector={}, payload=payload)
        self.client.upsert(HITS, [point], wait=True)
        this_window = models.Filter(must=[is_("key", key), is_("window", window)])
        return int(self.client.count(HITS, this_window, exact=True).count)
