"""`tandem up` keeps its vLLM alive: a dead one is ended (whole group) and started again.

Restarts back off (1, 2, 4, ... s up to `max_backoff_s`) and are bounded: after `max_restarts`
in a row without a stable run, supervision gives up and says why in the log and in /readyz.
The adapters come back on their own: the background adapter check loads the active and
canary versions into every healthy replica that lacks them (llm/upkeep.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from tandem.errors import DependencyDown

log = logging.getLogger("tandem.vllm")


class Supervised(Protocol):
    """What the supervisor needs of a server process (`VllmProcess` is the real one)."""

    def start(self) -> None: ...
    def wait_healthy(self, timeout_s: float) -> float: ...
    def exit_reason(self) -> str | None: ...
    def stop(self, grace_s: float = 15.0) -> None: ...


@dataclass
class SupervisorStatus:
    """What /readyz shows under `checks.vllm_supervisor`."""

    state: str = "starting"  # starting | running | restarting | failed | stopped
    restarts: int = 0  # restarts in a row since the last stable run
    total_restarts: int = 0
    last_exit: str | None = None  # why the last vLLM ended, e.g. "killed by SIGKILL"
    history: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.total_restarts,
            "last_exit": self.last_exit,
        }


class VllmSupervisor:
    """Watches one `VllmProcess` from a thread; `stop()` ends it for good."""

    def __init__(
        self,
        process: Supervised,
        startup_timeout_s: float = 300.0,
        max_restarts: int = 5,
        max_backoff_s: float = 30.0,
        stable_s: float = 300.0,
        poll_s: float = 0.5,
    ) -> None:
        self.process = process
        self.startup_timeout_s = startup_timeout_s
        self.max_restarts = max_restarts
        self.max_backoff_s = max_backoff_s
        self.stable_s = stable_s  # a run this long resets the count of restarts in a row
        self.poll_s = poll_s
        self.status = SupervisorStatus()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy_since: float | None = None

    def start(self) -> None:
        """Start vLLM (watching begins with `watch`, once it is healthy)."""
        self.process.start()

    def watch(self) -> float:
        """Wait until vLLM is healthy, then watch it; returns the seconds it took."""
        seconds = self.process.wait_healthy(self.startup_timeout_s)
        self._running()
        self._thread = threading.Thread(target=self._watch, name="vllm-supervisor", daemon=True)
        self._thread.start()
        return seconds

    def stop(self) -> None:
        """Stop watching, then end vLLM's whole process group."""
        self._stopping.set()
        for _ in range(2):  # again if the thread was starting a new vLLM meanwhile
            if self._thread is not None:
                self._thread.join(timeout=30)
            self.process.stop()
        self.status.state = "stopped"

    def report(self) -> dict[str, Any]:
        return self.status.as_dict()

    def _running(self) -> None:
        self.status.state = "running"
        self._healthy_since = time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            reason = self.process.exit_reason()
            if reason is None:
                since = self._healthy_since
                if since is not None and time.monotonic() - since > self.stable_s:
                    self.status.restarts = 0
                continue
            if not self._restart(reason):
                return

    def _restart(self, reason: str) -> bool:
        """End the dead vLLM's group and start it again; False once supervision gives up."""
        status = self.status
        status.last_exit = reason
        status.history.append(reason)
        self.process.stop(grace_s=5.0)  # the engine-core and workers outlive the API server
        while not self._stopping.is_set():
            if status.restarts >= self.max_restarts:
                status.state = "failed"
                log.error("vLLM %s; gave up after %d restarts in a row", reason, status.restarts)
                return False
            backoff = min(self.max_backoff_s, 2.0**status.restarts)
            status.state = "restarting"
            status.restarts += 1
            status.total_restarts += 1
            log.warning("vLLM %s; restart %d in %.0f s", reason, status.restarts, backoff)
            if self._stopping.wait(backoff):
                return False
            try:
                self.process.start()
                self.process.wait_healthy(self.startup_timeout_s)
            except DependencyDown as error:
                reason = str(error)
                status.last_exit = reason
                self.process.stop(grace_s=5.0)
                continue
            log.warning("vLLM is back after restart %d", status.restarts)
            self._running()
            return True
        return False
