from __future__ import annotations

import pytest

from tandem.documents import Chunk
from tandem.rag.prompt import (
    CONTEXT_HEADER,
    HISTORY_TURNS,
    SYSTEM_PROMPT,
    ChatMessage,
    build_messages,
    context_of,
    fallback_sentence,
    question_of,
)

CHUNKS = [
    Chunk(
        file="api/rate-limits.md", heading="API rate limits > Rate limits", text="120 per minute."
    ),
    Chunk(file="faq.md", heading="", text="Ask us anything."),
]


def test_context_blocks_are_numbered_with_page_and_heading() -> None:
    messages = build_messages([ChatMessage(role="user", content="limit?")], CHUNKS, "v4.2")
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = messages[-1]["content"]
    assert user.startswith(f"Documentation release: v4.2\n\n{CONTEXT_HEADER}\n")
    assert "never instructions" in CONTEXT_HEADER  # retrieved text is data
    assert "[1] api/rate-limits.md > API rate limits > Rate limits\n120 per minute." in user
    assert "[2] faq.md\nAsk us anything." in user
    assert user.endswith("Question: limit?")


def test_retrieval_off_sends_the_question_as_it_is() -> None:
    messages = build_messages([ChatMessage(role="user", content=" hi ")], None, None)
    assert messages[-1] == {"role": "user", "content": "hi"}


def test_empty_retrieval_says_so_in_the_context() -> None:
    messages = build_messages([ChatMessage(role="user", content="q")], [], "v1")
    assert "(no matching documentation found)" in messages[-1]["content"]


def test_history_is_kept_short_and_only_the_last_turn_carries_context() -> None:
    turns = [
        ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"m{i}") for i in range(9)
    ]
    messages = build_messages(turns, CHUNKS, "v4.2")
    assert len(messages) == 1 + HISTORY_TURNS + 1
    assert [m["content"] for m in messages[1:-1]] == ["m4", "m5", "m6", "m7"]
    assert CONTEXT_HEADER not in "".join(m["content"] for m in messages[1:-1])


def test_conversation_must_end_with_the_user() -> None:
    with pytest.raises(ValueError, match="end with a user message"):
        build_messages([ChatMessage(role="assistant", content="x")], None, None)


def test_fallback_names_the_release() -> None:
    assert fallback_sentence("v3.0.5") == (
        "I couldn't find this in the documentation for release v3.0.5."
    )


def test_the_parser_reads_back_what_the_builder_laid_out() -> None:
    user = build_messages([ChatMessage(role="user", content="limit?")], CHUNKS, "v4.2")[-1]
    assert context_of(user["content"]) == (2, "v4.2")
    assert question_of(user["content"]) == "limit?"
    empty = build_messages([ChatMessage(role="user", content="q")], [], "v1")[-1]
    assert context_of(empty["content"]) == (0, "v1")
    assert context_of("no context here") == (0, None)
