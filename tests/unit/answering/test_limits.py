"""Every limit on a request is one setting, checked in `tandem.answering.limits` only."""

from __future__ import annotations

import pytest

from tandem.answering.limits import check_conversation, check_text, check_top_k
from tandem.api.schemas import ChatRequest, RetrieveRequest
from tandem.errors import BadInput
from tandem.rag.prompt import ChatMessage
from tandem.settings import LimitSettings, RetrievalSettings, Settings


def turns(*contents: str) -> list[ChatMessage]:
    roles = ["user", "assistant"] * len(contents)
    return [ChatMessage(role=r, content=c) for r, c in zip(roles, contents, strict=False)]


def test_top_k_defaults_to_the_setting_and_is_capped_by_the_other() -> None:
    chosen = Settings(retrieval=RetrievalSettings(top_k=3, max_top_k=10))
    assert check_top_k(None, chosen) == 3
    assert check_top_k(10, chosen) == 10
    for wrong in (0, -1, 11):
        with pytest.raises(BadInput, match="top_k must be between 1 and 10"):
            check_top_k(wrong, chosen)


def test_raising_the_setting_raises_the_cap_everywhere() -> None:
    """Nothing else holds a number: the schemas take what the setting allows."""
    wide = Settings(retrieval=RetrievalSettings(max_top_k=80))
    assert check_top_k(80, wide) == 80
    assert ChatRequest.model_validate({"messages": [{"role": "user", "content": "q"}], "top_k": 80})
    assert RetrieveRequest.model_validate({"query": "q" * 20_000, "top_k": 80})
    long = {"role": "user", "content": "x" * 20_000}
    assert ChatRequest.model_validate({"messages": [long]}).messages[0].content == long["content"]
    roomy = Settings(limits=LimitSettings(max_message_chars=20_000))
    assert check_conversation([ChatMessage(role="user", content="x" * 20_000)], roomy)


def test_messages_and_queries_are_capped_by_one_setting() -> None:
    tight = Settings(limits=LimitSettings(max_message_chars=10))
    assert check_text("0123456789", tight) == "0123456789"
    with pytest.raises(BadInput, match="the query may have at most 10 characters"):
        check_text("0123456789!", tight, "the query")
    with pytest.raises(BadInput, match="a message may have at most 10 characters"):
        check_conversation(turns("x" * 11, "ok", "fine"), tight)


def test_the_conversation_is_capped_and_ends_with_a_user_turn() -> None:
    few = Settings(max_messages=3)
    assert check_conversation(turns("a", "b", "c"), few) == turns("a", "b", "c")
    with pytest.raises(BadInput, match="at most 3 messages per request"):
        check_conversation(turns("a", "b", "c", "d", "e"), few)
    for wrong in ([], turns("a", "b"), turns("a", "b", "  \n")):
        with pytest.raises(BadInput, match="the last message must be a non-empty user message"):
            check_conversation(wrong, few)
