"""A real HTTP relay that can cut a streamed answer part-way: in front of vLLM it plays a vLLM
that dies mid-answer, in front of Tandem a browser losing its network mid-stream (either way
the connection is reset before the stream's end). In front of vLLM it can also put a sentence
before the model's answer (`prefix`): a model that invents a fact, on the real stream."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from http.server import BaseHTTPRequestHandler

import httpx
from tests.fakes import LoopbackServer, QuietHandler

FORWARDED = ("content-type", "authorization")


class StreamRelay(LoopbackServer):
    """Relays every request to `upstream`; while `cut_after` is set, a response is cut (TCP
    reset) once more than that many `data:` lines (SSE events) have passed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.cut_after: int | None = None
        self.cuts = 0
        self.prefix: str | None = None  # put before each chat completion's content
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.relay()

            def do_POST(self) -> None:
                self.relay()

            def relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED}
                url = relay.upstream + self.path
                with (
                    httpx.Client(timeout=300) as client,
                    client.stream(self.command, url, content=body, headers=headers) as upstream,
                ):
                    prefix = relay.prefix if self.path.endswith("/chat/completions") else None
                    if prefix is not None and not upstream.headers.get(
                        "content-type", ""
                    ).startswith("text/event-stream"):
                        self.send_prefixed(upstream.read(), prefix)
                        return
                    self.send_response(upstream.status_code)
                    self.send_header("content-type", upstream.headers.get("content-type", ""))
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    lines = 0
                    if prefix is not None:
                        delta = {"choices": [{"index": 0, "delta": {"content": prefix}}]}
                        self.send_chunk(f"data: {json.dumps(delta)}\n\n".encode())
                    for data in upstream.iter_bytes():
                        lines += data.count(b"data:")
                        if relay.cut_after is not None and lines > relay.cut_after:
                            relay.cuts += 1
                            self.reset()
                            return
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")

            def send_chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def send_prefixed(self, raw: bytes, prefix: str) -> None:
                """A whole completion with `prefix` before its content."""
                body = json.loads(raw)
                message = body["choices"][0]["message"]
                message["content"] = prefix + (message.get("content") or "")
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def reset(self) -> None:
                """Drop the connection with a TCP reset, mid-stream."""
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

            def finish(self) -> None:
                with contextlib.suppress(OSError):  # the connection was reset on purpose
                    super().finish()

        return Handler
