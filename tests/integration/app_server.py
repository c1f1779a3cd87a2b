"""The real app served by uvicorn in a thread (integration tests and the benches use it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import uvicorn
from tests.conftest import free_port

from tandem.api.app import create_app
from tandem.api.deps import Services
from tandem.settings import Settings


def serve(settings: Settings, services: Services, log_level: str = "warning") -> Generator[str]:
    """Run the real app on `services` with uvicorn in a thread; yields its base URL once."""
    port = free_port()
    app = create_app(settings, services_factory=lambda _: services)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
