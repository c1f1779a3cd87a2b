"""A fake Tandem played at the HTTP transport, and a small QA file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tandem.evaluation.scores import ConfigSummary

RELEASE = "v3.0.5"
OCR_SOURCE = {
    "n": 1,
    "file": "configuration.md",
    "heading": "Configuration > OCR settings > PAPERLESS_OCR_LANGUAGE",
    "release": RELEASE,
    "score": 0.9,
    "snippet": "...",
}
QA_LINES = [
    {
        "question": "How do I set the OCR language?",
        "answer_terms": ["PAPERLESS_OCR_LANGUAGE", "deu"],
        "file": "configuration.md",
        "heading": "PAPERLESS_OCR_LANGUAGE",
    },
    {"question": "Does it run on a toaster?", "answer_terms": []},
    {"question": "What database is the default?", "answer_terms": ["SQLite"]},
]


OCR_PAGE = {k: OCR_SOURCE[k] for k in ("file", "heading", "release")}
FALLBACK = f"I couldn't find this in the documentation for release {RELEASE}."


def default_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Hybrid answers from the docs, RAG suggests the OCR page; without retrieval the
    adapter invents a version, base rambles; the toaster is declined (off-topic) with
    retrieval and gets the model's own fallback without it."""
    question = body["messages"][-1]["content"]
    retrieval, adapter = body["retrieval"], body["adapter"]
    sources = [OCR_SOURCE] if retrieval else []
    decision: dict[str, Any] = {"outcome": "answered", "abstained": None, "unsupported": []}
    if "toaster" in question:
        answer, sources = FALLBACK, []
        reason = ("declined", "off_topic") if retrieval else ("suggested", "model_fallback")
        decision.update(outcome=reason[0], abstained=reason[1])
    elif retrieval and "OCR" in question and adapter == "none":
        answer = FALLBACK
        decision.update(outcome="suggested", abstained="weak_evidence", suggestions=[OCR_PAGE])
    elif retrieval and "OCR" in question:
        answer = "Set PAPERLESS_OCR_LANGUAGE, for example to deu.\nSources: [1]"
    elif retrieval:
        answer = "The default database is SQLite.\nSources: [1]"
    elif adapter is None:
        answer = "You can set the OCR language in the settings. It defaults to English since 1.7."
        decision.update(unsupported=["1.7"], warnings=["unsupported_literal"])
    else:
        answer = "As an AI, I think the language can be changed [4]. " * 3
    return {
        "id": "chat-1",
        "answer": answer,
        "grounded": decision["outcome"] == "answered" and bool(sources),
        "warnings": [],
        "suggestions": [],
        **decision,
        "sources": sources,
        "adapter": None if adapter == "none" else "support@v3",
        "index": {"release": RELEASE, "collection": "docs-v3.0.5"},
        "usage": {"prompt_tokens": 400 if retrieval else 60, "completion_tokens": 30},
        "timings_ms": {"retrieval": 5.0, "generation": 80.0, "total": 90.0},
    }


class FakeTandem:
    """Routes like the real server; `script` queues responses per question text."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]] = default_answer):
        self.answer = answer
        self.chat_bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.script: dict[str, list[httpx.Response | Exception]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path == "/v1/retrieve":
            return httpx.Response(
                200, json={"chunks": [], "index": {"release": RELEASE, "collection": "c"}}
            )
        assert request.url.path == "/v1/chat", request.url.path
        body = json.loads(request.content)
        self.chat_bodies.append(body)
        self.headers.append(request.headers)
        queued = self.script.get(body["messages"][-1]["content"])
        if queued:
            step = queued.pop(0)
            if isinstance(step, Exception):
                raise step
            return step
        return httpx.Response(200, json=self.answer(body))

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def fake() -> FakeTandem:
    return FakeTandem()


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in QA_LINES) + "\n", encoding="utf-8")
    return path


def config_summary(config: str, **values: Any) -> ConfigSummary:
    """A plausible summary of one eval configuration, with `values` changed."""
    base: dict[str, Any] = {
        "config": config,
        "approach": config,
        "questions": 10,
        "failed": 0,
        "mean_coverage": 0.5,
        "source_hit_rate": None,
        "source_hit_questions": 0,
        "compliance_rate": 0.5,
        "rule_rates": {},
        "citation_validity_rate": 1.0,
        "latency_p50_ms": 100.0,
        "latency_p95_ms": 200.0,
        "server_p50_ms": None,
        "server_p95_ms": None,
        "mean_prompt_tokens": 100.0,
        "mean_completion_tokens": 50.0,
        "adapters": [],
    }
    return ConfigSummary(**{**base, **values})
