"""The eval client: asks a running Tandem each question under each configuration."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import httpx

from tandem.api_client import TandemClient, error_from_response
from tandem.errors import BadInput, Unreachable
from tandem.evaluation.qa import QAItem


@dataclass(frozen=True)
class Configuration:
    """One way of answering: which adapter (None = default slot, "none" = base) and retrieval."""

    name: str
    adapter: str | None
    retrieval: bool
    approach: str


CONFIGURATIONS: dict[str, Configuration] = {
    c.name: c
    for c in (
        Configuration("base", "none", False, "Base model (no adapter, no retrieval)"),
        Configuration("rag", "none", True, "RAG only (base model + retrieval)"),
        Configuration("adapter", None, False, "Fine-tuning only (support adapter)"),
        Configuration("hybrid", None, True, "Hybrid (adapter + retrieval)"),
    )
}

TRANSIENT_STATUS = {429, 502, 503, 504}
MAX_TRIES = 3
MAX_RETRY_AFTER_S = 30.0


@dataclass
class Outcome:
    """What one question got under one configuration; `error` is set when it failed."""

    item: QAItem
    config: Configuration
    response: dict[str, Any] | None
    error: str | None
    latency_ms: float | None
    attempts: int


def parse_configs(names: str | Sequence[str]) -> list[Configuration]:
    """'base,rag' -> configurations in the order given; unknown names are bad input."""
    raw = names.split(",") if isinstance(names, str) else list(names)
    wanted = [n.strip().lower() for n in raw if n.strip()]
    unknown = [n for n in wanted if n not in CONFIGURATIONS]
    if unknown or not wanted:
        raise BadInput(f"unknown configurations {unknown}; choose from {list(CONFIGURATIONS)}")
    return [CONFIGURATIONS[n] for n in dict.fromkeys(wanted)]


def _retry_delay(response: httpx.Response | None, attempt: int, backoff_s: float) -> float:
    header = response.headers.get("retry-after") if response is not None else None
    if header is not None:
        try:
            return min(max(float(header), 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass  # an HTTP date: fall back to exponential backoff
    return float(backoff_s * 2 ** (attempt - 1))


class Harness:
    """A client of `POST /v1/chat` with retries; share one per evaluation run."""

    def __init__(
        self,
        url: str,
        api_key: str = "",
        *,
        timeout_s: float = 120.0,
        backoff_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = TandemClient(url, api_key, timeout_s=timeout_s, transport=transport)
        self.url = self._api.url
        self._backoff_s = backoff_s
        self._sleep = sleep

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, tries: int = MAX_TRIES
    ) -> httpx.Response:
        """One request with up to `tries` tries on transient errors; raises the last one."""
        for attempt in range(1, tries + 1):
            started = time.perf_counter()
            try:
                response = self._api.send(method, path, json=body)
            except httpx.TransportError:
                if attempt == tries:
                    raise
                self._sleep(_retry_delay(None, attempt, self._backoff_s))
                continue
            # the last try's own time: waiting between retries is not the server's latency
            response.extensions["tandem_latency_ms"] = (time.perf_counter() - started) * 1000
            response.extensions["tandem_attempts"] = attempt
            if response.status_code not in TRANSIENT_STATUS or attempt == tries:
                return response
            self._sleep(_retry_delay(response, attempt, self._backoff_s))
        raise AssertionError("unreachable")  # pragma: no cover

    def check_reachable(self) -> None:
        """Fail fast, naming the URL, when nothing answers there."""
        try:
            self._send("GET", "/healthz", None, tries=1)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach Tandem at {self.url}/healthz: {exc!r}") from None

    def serving_release(self) -> str | None:
        """The docs release the server answers from (via /v1/retrieve), or None if unknown."""
        try:
            response = self._send("POST", "/v1/retrieve", {"query": "release", "top_k": 1})
            release = response.json()["index"]["release"] if response.is_success else None
        except (httpx.TransportError, ValueError, KeyError, TypeError):
            return None
        return str(release) if release else None

    def ask(self, item: QAItem, config: Configuration) -> Outcome:
        """Ask one question; transient failures are retried, others become a failed Outcome."""
        body = {
            "messages": [{"role": "user", "content": turn} for turn in item.user_turns()],
            "stream": False,
            "adapter": config.adapter,
            "retrieval": config.retrieval,
        }
        try:
            response = self._send("POST", "/v1/chat", body)
        except httpx.TransportError as exc:
            return Outcome(item, config, None, f"{type(exc).__name__}: {exc}", None, MAX_TRIES)
        latency_ms = float(response.extensions["tandem_latency_ms"])
        attempts = int(response.extensions.get("tandem_attempts", 1))
        if not response.is_success:
            error = error_from_response(response)
            if response.status_code in (401, 403):
                raise BadInput(f"{self.url}/v1/chat refused the API key: {error}")
            return Outcome(item, config, None, str(error), latency_ms, attempts)
        try:
            payload = response.json()
            if not isinstance(payload.get("answer"), str):
                raise ValueError("no 'answer' string")
        except (ValueError, AttributeError) as exc:
            return Outcome(item, config, None, f"malformed response: {exc}", latency_ms, attempts)
        return Outcome(item, config, payload, None, latency_ms, attempts)

    def run(
        self,
        items: Sequence[QAItem],
        configs: Sequence[Configuration],
        concurrency: int = 1,
        on_done: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Every question under every configuration, in (config, question) order."""
        tasks = [(config, item) for config in configs for item in items]
        results: list[Outcome | None] = [None] * len(tasks)
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = {
                pool.submit(self.ask, item, config): i for i, (config, item) in enumerate(tasks)
            }
            try:
                for future in as_completed(futures):
                    outcome = future.result()
                    results[futures[future]] = outcome
                    if on_done:
                        on_done(outcome)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [r for r in results if r is not None]
