"""Delivering handoffs to the help desk's webhook: signed, retried with backoff, once.

The body is JSON with a `timestamp` inside it, signed as a whole: `X-Tandem-Signature:
sha256=<hex HMAC-SHA256 of the raw body under TANDEM_HANDOFF__SECRET>`, so a receiver can
refuse a forged body and an old one replayed. A delivery worker runs in the app's lifespan
beside the chats (async HTTP, the store in worker threads: a slow or dead receiver never
holds a chat up); it takes the due handoffs from the store, so what was pending when Tandem
stopped is sent after it starts, and a handoff answered 2xx is marked delivered and never
sent again. A receiver should still treat `handoff.id` as idempotent: a worker that dies
between the 2xx and writing it down leaves the handoff to be sent once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from tandem import __version__
from tandem.metrics import HANDOFF_ATTEMPTS
from tandem.settings import HandoffSettings
from tandem.stores.handoffs import HandoffRecord, HandoffStore, Status

SIGNATURE_HEADER = "X-Tandem-Signature"
HANDOFF_HEADER = "X-Tandem-Handoff"
REPLAY_TOLERANCE_S = 300  # what `verify` accepts as fresh; receivers choose their own
BATCH = 16  # handoffs one worker sends at once
HOLD_MARGIN_S = 5.0  # a claimed handoff stays held this long past the attempt's deadline
log = logging.getLogger("tandem.handoffs")


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    signature: str,
    secret: str,
    now: float | None = None,
    tolerance_s: float = REPLAY_TOLERANCE_S,
) -> bool:
    """What a receiver checks: the signature over the raw body, and a fresh timestamp."""
    if not hmac.compare_digest(sign(body, secret), signature):
        return False
    sent = json.loads(body).get("timestamp")
    return isinstance(sent, int) and abs((now or time.time()) - sent) <= tolerance_s


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """The wait after failed attempt `attempt` (1-based): base, 2x, 4x ... at most `max_s`."""
    return float(min(max_s, base_s * 2 ** (attempt - 1)))


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def webhook_payload(record: HandoffRecord, attempt: int, now: float) -> dict[str, Any]:
    """What the help desk receives: the handoff, the transcript, what Tandem answered."""
    return {
        "type": "tandem.handoff",
        "timestamp": int(now),
        "attempt": attempt,
        "handoff": {"id": record.id, "created_at": _iso(record.created)},
        "contact": record.contact,
        "note": record.note,
        "transcript": record.transcript,
        "answered": record.answered,
    }


def webhook_body(record: HandoffRecord, attempt: int, now: float) -> bytes:
    """The raw body that is signed and sent (compact UTF-8 JSON)."""
    payload = webhook_payload(record, attempt, now)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class HandoffDelivery:
    """Sends due handoffs until cancelled; `nudge()` wakes it for a new one at once."""

    def __init__(
        self,
        store: HandoffStore,
        settings: HandoffSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.webhook_url or not settings.secret:
            raise ValueError("handoff delivery needs TANDEM_HANDOFF__WEBHOOK_URL and __SECRET")
        self.store = store
        self.settings = settings
        self.url = settings.webhook_url
        self.secret = settings.secret
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=settings.timeout_s, transport=transport)
        self.wake = asyncio.Event()

    def nudge(self) -> None:
        self.wake.set()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def run(self) -> None:
        """Deliver, then sleep until the next handoff is due, `poll_s` at most, or a nudge."""
        while True:
            pause = self.settings.poll_s
            try:
                pause = await self.deliver_due()
            except Exception:  # the store failed: the claims lapse, the next round retries
                log.exception("handoff delivery round failed; next in %.0f s", pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(pause, 0.01))
            self.wake.clear()

    async def deliver_due(self) -> float:
        """One round: claim what is due and send it; returns seconds until the next is due."""
        hold_s = self.settings.timeout_s + HOLD_MARGIN_S
        due = await anyio.to_thread.run_sync(self.store.claim_due, self.clock(), hold_s, BATCH)
        results = await asyncio.gather(*(self.deliver(r) for r in due), return_exceptions=True)
        pause = self.settings.poll_s
        for record, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.error("handoff %s: attempt not recorded: %r", record.id, result)
            elif result.status == "pending":
                pause = min(pause, result.next_attempt - self.clock())
        return 0.0 if len(due) == BATCH else pause

    async def deliver(self, record: HandoffRecord) -> HandoffRecord:
        """One attempt at `record`, its result written to the store."""
        attempt = record.attempts + 1
        error = await self._post(record, attempt)
        now = self.clock()
        status: Status = "delivered"
        next_attempt = now
        if error is not None:
            status = "failed" if attempt >= self.settings.max_attempts else "pending"
            delay = backoff_delay(attempt, self.settings.backoff_s, self.settings.backoff_max_s)
            next_attempt = now + delay
            log.warning(
                "handoff %s: attempt %d of %d failed (%s)%s", record.id, attempt,
                self.settings.max_attempts, error,
                "; given up" if status == "failed" else f"; next in {delay:.1f} s",
            )  # fmt: skip
        HANDOFF_ATTEMPTS.labels(result="retry" if status == "pending" else status).inc()
        return await anyio.to_thread.run_sync(
            self.store.finish_attempt, record.id, status, error, next_attempt, now
        )

    async def _post(self, record: HandoffRecord, attempt: int) -> str | None:
        """None when the receiver answered 2xx, else what went wrong (no contact in it)."""
        body = webhook_body(record, attempt, self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"tandem/{__version__}",
            SIGNATURE_HEADER: sign(body, self.secret),
            HANDOFF_HEADER: record.id,
        }
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"[:300]
        if response.is_success:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
