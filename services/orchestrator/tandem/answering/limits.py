"""What one request may ask: each limit is one setting, checked here and nowhere else.

`/v1/chat`, `/v1/chat/completions` and `/v1/retrieve` call these before any retrieval or
model call. The request schemas check shape only (types, required, non-empty); a number a
setting holds is never written into a schema as well, so raising the setting raises it on
every route.
"""

from __future__ import annotations

from collections.abc import Sequence

from tandem.errors import BadInput
from tandem.rag.prompt import ChatMessage
from tandem.settings import Settings


def check_top_k(top_k: int | None, settings: Settings) -> int:
    """The blocks to retrieve: `top_k` as asked (None: TANDEM_RETRIEVAL__TOP_K), from 1 to
    TANDEM_RETRIEVAL__MAX_TOP_K."""
    chosen = settings.retrieval.top_k if top_k is None else top_k
    most = settings.retrieval.max_top_k
    if not 1 <= chosen <= most:
        raise BadInput(f"top_k must be between 1 and {most}")
    return chosen


def check_text(text: str, settings: Settings, what: str = "a message") -> str:
    """`text` (a message or a query) within TANDEM_LIMITS__MAX_MESSAGE_CHARS."""
    most = settings.limits.max_message_chars
    if len(text) > most:
        raise BadInput(f"{what} may have at most {most} characters")
    return text


def check_conversation(messages: Sequence[ChatMessage], settings: Settings) -> list[ChatMessage]:
    """The conversation: at most TANDEM_MAX_MESSAGES messages, each within
    TANDEM_LIMITS__MAX_MESSAGE_CHARS, the last one a non-empty user turn."""
    if not messages or messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
        raise BadInput("the last message must be a non-empty user message")
    if len(messages) > settings.max_messages:
        raise BadInput(f"at most {settings.max_messages} messages per request")
    for message in messages:
        check_text(message["content"], settings)
    return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
