"""A help desk's webhook endpoint for the tests: a real HTTP server in a thread.

It records every request (headers and raw body) and answers each with the next status of
`plan`, then `status` from there on; `hang_s` holds each answer that long (a slow receiver).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes import LoopbackServer, QuietHandler


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def handoff(self) -> str:
        return str(self.payload["handoff"]["id"])


class WebhookReceiver(LoopbackServer):
    def __init__(self, port: int = 0) -> None:
        self.plan: list[int] = []
        self.status = 200
        self.hang_s = 0.0
        self.received: list[Received] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver.plan.pop(0) if receiver.plan else receiver.status
                    receiver.in_flight += 1
                time.sleep(receiver.hang_s)
                with receiver._lock:
                    receiver.in_flight -= 1
                    receiver.received.append(Received(dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        super().__init__(Handler, port)
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def of(self, handoff_id: str) -> list[Received]:
        """What arrived for one handoff, in order."""
        with self._lock:
            return [r for r in self.received if r.handoff == handoff_id]

    def wait_for(self, handoff_id: str, count: int = 1, timeout_s: float = 60) -> list[Received]:
        """Block until `count` requests for the handoff arrived; all that arrived."""
        deadline = time.monotonic() + timeout_s
        while len(self.of(handoff_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{handoff_id}: {len(self.of(handoff_id))} of {count} came")
            time.sleep(0.05)
        return self.of(handoff_id)
