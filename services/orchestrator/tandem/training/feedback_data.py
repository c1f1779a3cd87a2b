"""`tandem dataset from-feedback`: reviewed feedback -> chat JSONL for the next adapter version.

An item becomes a training example when an agent attached a corrected answer (whatever the
customer's rating), or approved a thumbs-up answer as given. The user turn is rebuilt from
the logged source blocks by the serving prompt builder, so the example shows the adapter
exactly the prompt the customer's answer was generated from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.documents import Chunk
from tandem.stores.feedback import FeedbackFilter, FeedbackItem, FeedbackLog
from tandem.training.dataset_build import chat_example


@dataclass
class FeedbackDataStats:
    corrected: int = 0
    approved: int = 0
    duplicates: int = 0  # same conversation and target answer as a newer item

    @property
    def examples(self) -> int:
        return self.corrected + self.approved


def training_target(item: FeedbackItem) -> str | None:
    """The answer to train on: the agent's correction, else an approved thumbs-up answer."""
    if item.corrected is not None:
        return item.corrected.strip()
    if item.approved and item.rating == "up":
        return item.answer.answer.strip()
    return None


def item_chunks(item: FeedbackItem) -> list[Chunk] | None:
    """The context blocks the answer was generated from; None when retrieval was off."""
    if item.answer.release is None:
        return None
    return [
        Chunk(file=s["file"], heading=s["heading"], text=s["text"], release=s["release"])
        for s in item.answer.sources
    ]


def feedback_examples(
    items: Iterable[FeedbackItem], stats: FeedbackDataStats
) -> list[dict[str, Any]]:
    """One example per reviewed item (newest first), without repeats."""
    examples: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        target = training_target(item)
        if target is None:
            continue
        example = chat_example(
            item.answer.conversation, item_chunks(item), item.answer.release, target
        )
        key = json.dumps(example, sort_keys=True)
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        examples.append(example)
        if item.corrected is not None:
            stats.corrected += 1
        else:
            stats.approved += 1
    return examples


def write_feedback_dataset(
    log: FeedbackLog, out: Path, since: float | None = None
) -> FeedbackDataStats:
    """Write the reviewed items rated at or after `since` to `out` as chat JSONL."""
    stats = FeedbackDataStats()
    items = log.items(FeedbackFilter(since=since, reviewed=True))
    examples = feedback_examples(items, stats)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
    out.write_text(text, encoding="utf-8")
    return stats
