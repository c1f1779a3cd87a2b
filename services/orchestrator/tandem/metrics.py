"""Prometheus metrics (module-level, so several app instances in one process share them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "tandem_http_requests_total", "HTTP requests by route and status", ["route", "status"]
)
CHAT_STAGE_SECONDS = Histogram(
    "tandem_chat_stage_seconds",
    "Time per chat stage",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ADAPTER_REQUESTS = Counter(
    "tandem_adapter_requests_total",
    "Chat requests per adapter version and outcome",
    ["adapter", "outcome"],
)
TOKENS = Counter("tandem_tokens_total", "Tokens through vLLM", ["kind"])
INDEX_POINTS = Gauge("tandem_index_points", "Points in the serving collection")
ANSWERS = Counter(
    "tandem_answers_total",
    "Answers by outcome (answered, suggested, declined) and whether cited",
    ["outcome", "cited"],
)
UNSUPPORTED_LITERALS = Counter(
    "tandem_unsupported_literals_total",
    "Literals (numbers, names, URLs, labels) in answers that no given block holds",
    ["route"],  # json: the sentence was removed; stream: flagged in `done`
)
CITATIONS_DROPPED = Counter(
    "tandem_citations_dropped_total", "Citation markers that pointed at no given block, removed"
)
HANDOFFS = Counter(
    "tandem_handoffs_total",
    "Handoffs to a person, by the outcome of the answer that led to them",
    ["outcome"],
)
HANDOFF_ATTEMPTS = Counter(
    "tandem_handoff_attempts_total",
    "Webhook deliveries of handoffs by result (delivered, retry, failed)",
    ["result"],
)
