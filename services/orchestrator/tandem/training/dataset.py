"""Chat-JSONL training examples: parsing, and the one label mask shared by validation and training.

An example is OpenAI fine-tuning chat JSONL: `{"messages": [{"role", "content", "weight"?}]}`.
Only assistant turns are trained (`weight` 0 opts a turn out); the mask is derived from the
base model's own chat template by rendering prefixes, so it holds for any template.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.answering.house_format import is_fallback
from tandem.errors import BadInput

IGNORE_INDEX = -100  # the label value the loss skips
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "weight", "name"}

Message = dict[str, Any]


class DatasetError(BadInput, ValueError):
    """An example that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Tokenized:
    """An example rendered with the chat template: token ids, labels and where each token sits."""

    text: str
    input_ids: list[int]
    labels: list[int]
    offsets: list[tuple[int, int]]

    @property
    def n_trained(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def parse_example(raw: Any) -> list[Message]:
    """Check one decoded JSON line against the schema and role order; return its messages."""
    if not isinstance(raw, dict) or not isinstance(raw.get("messages"), list):
        raise DatasetError('expected an object with a "messages" list')
    messages: list[Message] = raw["messages"]
    if not messages:
        raise DatasetError('"messages" is empty')
    for i, message in enumerate(messages, start=1):
        _check_message(i, message)
    _check_role_order([m["role"] for m in messages])
    if not any(m["role"] == "assistant" and is_trained(m) for m in messages):
        raise DatasetError("no trained assistant turn (every assistant message has weight 0)")
    return messages


def _check_message(i: int, message: Any) -> None:
    if not isinstance(message, dict):
        raise DatasetError(f"message {i} is not an object")
    role = message.get("role")
    if role not in ROLES:
        raise DatasetError(f"message {i} has role {role!r}; use one of {', '.join(ROLES)}")
    content = message.get("content")
    if not isinstance(content, str):
        raise DatasetError(f"message {i} ({role}) needs a string 'content'")
    if not content.strip():
        raise DatasetError(f"message {i} ({role}) is empty")
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        raise DatasetError(f"message {i} has unknown keys: {', '.join(unknown)}")
    if "weight" in message:
        if role != "assistant":
            raise DatasetError(f"message {i}: 'weight' is only allowed on assistant messages")
        if message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
            raise DatasetError(f"message {i}: 'weight' must be 0 or 1")


def _check_role_order(roles: list[str]) -> None:
    body = roles[1:] if roles[0] == "system" else roles
    if "system" in body:
        raise DatasetError("a system message is only allowed first")
    if not body or body[0] != "user":
        raise DatasetError("the conversation must start with a user message (after the system one)")
    for i, role in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            where = i + 1 + (len(roles) - len(body))
            raise DatasetError(
                f"message {where} is {role!r} where {expected!r} was expected: "
                "user and assistant turns must alternate"
            )


def is_trained(message: Message) -> bool:
    """An assistant turn is trained unless its `weight` is 0."""
    return bool(message["role"] == "assistant" and message.get("weight", 1) != 0)


def answers_with_fallback(messages: list[Message]) -> bool:
    """The last trained answer is the house fallback sentence ("I couldn't find this ...")."""
    last = [m for m in messages if is_trained(m)][-1]
    return is_fallback(str(last["content"]))


def chat_messages(messages: list[Message]) -> list[dict[str, str]]:
    """The messages as the chat template sees them (no `weight`)."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render(messages: list[Message], tokenizer: Any, add_generation_prompt: bool = False) -> str:
    """The text the base model's chat template makes of `messages`."""
    return str(
        tokenizer.apply_chat_template(
            chat_messages(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    )


def trained_spans(messages: list[Message], tokenizer: Any) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans that are trained.

    A trained span is what the template adds for an assistant turn after the generation
    prompt, up to and including the end-of-turn token (so the model learns to stop).
    """
    text = render(messages, tokenizer)
    eos = tokenizer.eos_token or ""
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if not is_trained(message):
            continue
        prompt = render(messages[:i], tokenizer, add_generation_prompt=True)
        turn = render(messages[: i + 1], tokenizer)
        if not (text.startswith(prompt) and text.startswith(turn) and turn.startswith(prompt)):
            raise DatasetError("the chat template does not render prefixes consistently")
        end = turn.rfind(eos) + len(eos) if eos and turn.rfind(eos) >= len(prompt) else len(turn)
        spans.append((len(prompt), end))
    return text, spans


def tokenize_example(messages: list[Message], tokenizer: Any) -> Tokenized:
    """Token ids and labels: assistant-turn tokens keep their id, everything else is ignored."""
    text, spans = trained_spans(messages, tokenizer)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    offsets: list[tuple[int, int]] = [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
    labels = [
        token if any(start <= a < end for start, end in spans) else IGNORE_INDEX
        for token, (a, _b) in zip(ids, offsets, strict=True)
    ]
    return Tokenized(text=text, input_ids=ids, labels=labels, offsets=offsets)


def iter_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text) for every non-blank line; text is None where it is not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None
                continue
            if line.strip():
                yield number, line


def iter_jsonl(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) for every non-blank line of a JSONL file."""
    for number, line in iter_lines(path):
        if line is None:
            raise DatasetError(f"{path}:{number}: not UTF-8 text")
        yield number, line


def load_examples(path: Path) -> list[list[Message]]:
    """Every example of a JSONL file; raises DatasetError naming the first bad line."""
    examples = []
    for number, line in iter_jsonl(path):
        try:
            examples.append(parse_example(json.loads(line)))
        except (json.JSONDecodeError, DatasetError) as error:
            raise DatasetError(
                f"{path}:{number}: {error} (run `tandem dataset validate {path}`)"
            ) from error
    return examples


def load_tokenizer(model_path: Path) -> Any:
    """The base model's tokenizer (with the chat template vLLM serves)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_path))


def file_sha256(path: Path) -> str:
    """The hash recorded in adapter cards for each data file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
