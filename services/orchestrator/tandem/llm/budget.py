"""The token budget: prompt plus `max_tokens` must fit the served context, checked before a call.

vLLM would refuse an over-long prompt too, but only once the stream has started (an in-band
error after a 200); checked here, it is a plain 400 before anything reaches a replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tandem.errors import BadInput
from tandem.llm.tokenizer_json import load_tokenizer_json
from tandem.rag.prompt import ChatMessage

# the chat template's frame per message (`<|im_start|>role\n ... <|im_end|>\n`), rounded up
TOKENS_PER_MESSAGE = 8


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class TokenizerCounter:
    """Exact counts with the served model's own `tokenizer.json` (the `tokenizers` library)."""

    def __init__(self, tokenizer_json: Path) -> None:
        self.tokenizer = load_tokenizer_json(tokenizer_json)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


class Utf8Bound:
    """An upper bound without a tokenizer: a byte-level BPE token covers at least one byte."""

    def count(self, text: str) -> int:
        return len(text.encode())


def counter_for(model_path: Path) -> TokenCounter:
    """The model's tokenizer when it is on disk (an external vLLM may serve it from elsewhere)."""
    tokenizer_json = model_path / "tokenizer.json"
    return TokenizerCounter(tokenizer_json) if tokenizer_json.is_file() else Utf8Bound()


def prompt_tokens(messages: Sequence[ChatMessage], counter: TokenCounter) -> int:
    return sum(counter.count(m["content"]) + TOKENS_PER_MESSAGE for m in messages)


def check_budget(
    messages: Sequence[ChatMessage], max_tokens: int, context_len: int, counter: TokenCounter
) -> int:
    """The prompt's token count (or its byte bound, when even that fits); BadInput when it and
    `max_tokens` overflow `context_len`.

    Most prompts fit even if each byte were a token, and counting that way takes microseconds
    where the tokenizer takes ~1.5 ms of every chat's wait for its first token.
    """
    bound = prompt_tokens(messages, Utf8Bound())
    if bound + max_tokens <= context_len:
        return bound
    used = prompt_tokens(messages, counter)
    if used + max_tokens > context_len:
        raise BadInput(
            f"the conversation needs about {used} tokens and the answer up to {max_tokens}, "
            f"over the served context of {context_len}: send fewer or shorter messages, "
            "a smaller max_tokens or a smaller top_k"
        )
    return used
