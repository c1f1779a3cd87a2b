"""RAFT-style training data: source Q&A items + Tandem's own retriever -> chat JSONL.

Each question phrasing becomes one example whose user turn carries the top-k blocks the real
retriever returns for it over the item's release (the right block swapped in when missed),
laid out by `build_messages` exactly as at serving time. In about a fifth of the examples
every right block is removed and the answer is the house fallback sentence.

Two answer styles: `house` answers in the item's own words (train.jsonl, eval.jsonl);
`copy` quotes the right block's own sentences and list items (train-copy.jsonl,
eval-copy.jsonl; see `copy_target`), and adds a longer ticket-style phrasing to some items.

Run: `python -m tandem.training.dataset_build [--style copy]` (seeded: re-running picks the
same items, phrasings, fallback turns and split; near-tied retrieval scores may still order a
few turns' blocks differently).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tandem.answering.house_format import check_answer, is_fallback
from tandem.documents import Chunk
from tandem.indexing.release_index import ReleaseIndex, gold_chunks
from tandem.rag.prompt import ChatMessage, build_messages, fallback_sentence
from tandem.settings import PROJECT_ROOT, get_settings
from tandem.training.copy_target import quote, with_customer_phrasing
from tandem.training.dataset_card import SPLIT_FILES, BuildStats, write_dataset_card

ADAPTER_DIR = PROJECT_ROOT / "adapters" / "support"
SEED = 4242
TOP_K = 4
EXTRA = 8  # retrieved beyond top-k: the distractors that fill in when a block is removed
FALLBACK_SHARE = 0.2
EVAL_SHARE = 0.15
LEAK_OVERLAP = 0.5  # a distractor holding this share of the answer's words counts as an answer
CUSTOMER_SHARE = 0.25  # copy style: items that gain a longer ticket-style phrasing
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("the and for you your are can with from that this into when then will".split())


@dataclass(frozen=True)
class QaItem:
    """One source item: a documented fact, its phrasings, and the house answer's parts."""

    id: str
    release: str
    file: str
    heading: str
    questions: list[str]
    answer: str
    steps: list[str]
    followup: dict[str, Any] | None = None

    @property
    def group(self) -> str:
        """Items about the same section (in any release) share a split."""
        return f"{self.file}#{self.heading.rsplit(' > ', 1)[-1].lower()}"


def _new_stats(style: str = "house") -> BuildStats:
    return BuildStats(
        seed=SEED, top_k=TOP_K, fallback_share=FALLBACK_SHARE, eval_share=EVAL_SHARE, style=style
    )


def load_items(path: Path) -> list[QaItem]:
    """The source items, one JSON object a line."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                items.append(QaItem(**json.loads(line)))
            except (TypeError, json.JSONDecodeError) as error:
                raise ValueError(f"{path}:{number}: not a Q&A item ({error})") from error
    return items


def house_answer(answer: str, steps: Sequence[str], sources: Sequence[int]) -> str:
    """The house format: direct answer, optional `Steps:` list, last line `Sources: [n]`."""
    parts = [answer.strip()]
    if steps:
        parts.append("Steps:\n" + "\n".join(f"{i}. {s.strip()}" for i, s in enumerate(steps, 1)))
    parts.append("Sources: " + ", ".join(f"[{n}]" for n in sources))
    return "\n\n".join(parts)


def target_answer(
    style: str,
    answer: str,
    steps: Sequence[str],
    blocks: Sequence[Chunk],
    cited: list[int],
    stats: BuildStats,
) -> str:
    """An answered turn's target: the item's own words (`house`), or the cited blocks' own
    sentences and list items (`copy`) — the item's words only when no sentence holds them."""
    quoted = quote([c.text for c in blocks], cited, answer, steps) if style == "copy" else None
    if quoted is not None:
        for opening in (quoted.opening, quoted.opening[:1]):  # one sentence if two break a rule
            text = house_answer(
                " ".join(u.text for u in opening),
                [u.text for u in quoted.steps],
                quoted.sources(opening),
            )
            if check_answer(text, len(blocks)).compliant:
                stats.copied += 1
                stats.copied_steps += bool(quoted.steps)
                return text
    if style == "copy":
        stats.authored += 1
    return house_answer(answer, steps, cited)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


def answer_overlap(chunk: Chunk, answer_words: set[str]) -> float:
    """The share of the answer's words found in the chunk."""
    return len(answer_words & _words(chunk.text)) / max(1, len(answer_words))


def context_blocks(
    item: QaItem,
    answer: str,
    steps: Sequence[str],
    query: str,
    index: ReleaseIndex,
    fallback: bool,
    rng: random.Random,
    stats: BuildStats,
) -> tuple[list[Chunk], list[int]]:
    """The blocks of one user turn and the numbers of the right ones among them (1-based)."""
    retrieved = index.retrieve(query, TOP_K + EXTRA)
    golds = gold_chunks(item.file, item.heading, index.chunks)
    if not golds:
        raise ValueError(
            f"item {item.id}: no chunk of {item.file} has a heading path ending with "
            f"{item.heading!r} in release {item.release}"
        )
    words = _words(answer + " " + " ".join(steps))
    if fallback:
        distractors = [
            c for c in retrieved if c not in golds and answer_overlap(c, words) < LEAK_OVERLAP
        ]
        return distractors[:TOP_K], []
    right = max(
        sorted(golds, key=lambda c: (c.heading, c.text)), key=lambda c: answer_overlap(c, words)
    )
    enough = 0.5 * answer_overlap(right, words)  # a piece of a split section may not hold it
    blocks = retrieved[:TOP_K]
    if any(c in golds and answer_overlap(c, words) >= enough for c in blocks):
        stats.gold_retrieved += 1
    else:
        stats.gold_swapped += 1
        blocks = blocks[: TOP_K - 1]
        blocks.insert(rng.randrange(len(blocks) + 1), right)
    cited = [
        i for i, c in enumerate(blocks, 1) if c in golds and answer_overlap(c, words) >= enough
    ]
    return blocks, cited


def chat_example(
    conversation: Sequence[ChatMessage],
    blocks: list[Chunk] | None,
    release: str | None,
    answer: str,
) -> dict[str, Any]:
    """One training line: the serving prompt (`build_messages`) and the target answer."""
    messages: list[dict[str, Any]] = [
        dict(m) for m in build_messages(conversation, blocks, release)
    ]
    for message in messages[1:-1]:
        if message["role"] == "assistant":
            message["weight"] = 0  # history turns are context, not targets
    messages.append({"role": "assistant", "content": answer})
    return {"messages": messages}


def _normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def phrasings(item: QaItem) -> list[str]:
    """The item's questions without repeats that differ only in case or punctuation."""
    seen: dict[str, str] = {}
    for question in item.questions:
        seen.setdefault(_normalised(question), question.strip())
    return list(seen.values())


def item_examples(
    item: QaItem,
    index: ReleaseIndex,
    fallback_units: set[str],
    stats: BuildStats,
    style: str = "house",
) -> list[dict[str, Any]]:
    """One example per phrasing, plus a two-turn conversation when the item has a follow-up."""
    examples = []
    questions = phrasings(item)
    stats.skipped_phrasings += len(item.questions) - len(questions)
    for n, question in enumerate(questions):
        unit = f"{item.id}:{n}"
        fallback = unit in fallback_units
        rng = random.Random(f"{SEED}:{unit}")
        blocks, cited = context_blocks(
            item, item.answer, item.steps, question, index, fallback, rng, stats
        )
        answer = (
            fallback_sentence(item.release)
            if fallback
            else target_answer(style, item.answer, item.steps, blocks, cited, stats)
        )
        conversation: list[ChatMessage] = [{"role": "user", "content": question}]
        examples.append(chat_example(conversation, blocks, item.release, answer))
    if item.followup:
        examples.append(_followup_example(item, questions[0], index, fallback_units, stats, style))
    return examples


def _followup_example(
    item: QaItem,
    first: str,
    index: ReleaseIndex,
    fallback_units: set[str],
    stats: BuildStats,
    style: str,
) -> dict[str, Any]:
    from tandem.answering.turn import retrieval_query

    assert item.followup is not None
    unit = f"{item.id}:followup"
    rng = random.Random(f"{SEED}:{unit}")
    history = _new_stats(style)  # the first turn is context, not counted
    first_blocks, cited = context_blocks(  # its blocks are gone from the prompt by now
        item, item.answer, item.steps, first, index, False, rng, history
    )
    first_answer = target_answer(style, item.answer, item.steps, first_blocks, cited, history)
    follow = item.followup
    conversation: list[ChatMessage] = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": follow["question"]},
    ]
    fallback = unit in fallback_units
    blocks, cited = context_blocks(
        item,
        follow["answer"],
        follow.get("steps", []),
        retrieval_query(conversation),
        index,
        fallback,
        rng,
        stats,
    )
    answer = (
        fallback_sentence(item.release)
        if fallback
        else target_answer(style, follow["answer"], follow.get("steps", []), blocks, cited, stats)
    )
    return chat_example(conversation, blocks, item.release, answer)


def plan(items: list[QaItem]) -> tuple[set[str], set[str]]:
    """(ids of the eval items, the units answered with the fallback), both seeded."""
    units = [f"{i.id}:{n}" for i in items for n in range(len(phrasings(i)))]
    units += [f"{i.id}:followup" for i in items if i.followup]
    random.Random(SEED).shuffle(units)
    fallback = set(units[: round(FALLBACK_SHARE * len(units))])
    sizes: dict[str, int] = {}
    for item in items:
        sizes[item.group] = sizes.get(item.group, 0) + len(phrasings(item)) + bool(item.followup)
    groups = sorted(sizes)
    random.Random(SEED + 1).shuffle(groups)
    eval_groups: set[str] = set()
    for group in groups:
        if sum(sizes[g] for g in eval_groups) >= EVAL_SHARE * len(units):
            break
        eval_groups.add(group)
    return {i.id for i in items if i.group in eval_groups}, fallback


def with_customer_phrasings(items: list[QaItem], stats: BuildStats) -> list[QaItem]:
    """A seeded share of the items gains a longer ticket-style phrasing (copy style)."""
    rng = random.Random(SEED + 2)
    out = []
    for item in items:
        if rng.random() < CUSTOMER_SHARE:
            item = replace(item, questions=with_customer_phrasing(item.questions, rng))
            stats.customer_phrasings += 1
        out.append(item)
    return out


def build(items_path: Path, corpus_root: Path, out_dir: Path, style: str = "house") -> BuildStats:
    """Write the style's train and eval files into `out_dir`; return the counts."""
    from tandem.rag.embedder import build_embedder

    stats = _new_stats(style)
    items = load_items(items_path)
    if style == "copy":
        items = with_customer_phrasings(items, stats)
    eval_ids, fallback_units = plan(items)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    embedder = build_embedder(get_settings())
    with tempfile.TemporaryDirectory(prefix="tandem-raft-") as workdir:
        for release in sorted({i.release for i in items}):
            index = ReleaseIndex(corpus_root / release, release, embedder, Path(workdir))
            stats.releases[release] = len(index.chunks)
            try:
                for item in (i for i in items if i.release == release):
                    split = "eval" if item.id in eval_ids else "train"
                    try:
                        examples = item_examples(item, index, fallback_units, stats, style)
                    except ValueError as error:
                        stats.unmatched.append(str(error))
                        continue
                    splits[split].extend(examples)
                    stats.items[split] += 1
            finally:
                index.close()
    for split, examples in splits.items():
        answers = [e["messages"][-1]["content"] for e in examples]
        stats.examples[split] = len(examples)
        stats.fallback[split] = sum(is_fallback(a) for a in answers)
        stats.two_turn[split] = sum(len(e["messages"]) > 3 for e in examples)
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
        (out_dir / SPLIT_FILES[style][split]).write_text(text, encoding="utf-8")
    return stats


def main(argv: list[str] | None = None) -> None:
    """Build the support adapter's data and its dataset card from the committed sources."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--style", choices=sorted(SPLIT_FILES), default="house")
    style = parser.parse_args(argv).style
    data = ADAPTER_DIR / "data"
    stats = build(data / "qa_items.jsonl", PROJECT_ROOT / "corpus", data, style)
    card = write_dataset_card(ADAPTER_DIR, stats)
    train, eval_ = (data / SPLIT_FILES[style][s] for s in ("train", "eval"))
    print(
        f"wrote {train} ({stats.examples['train']} examples), "
        f"{eval_} ({stats.examples['eval']}) and {card}"
    )
    for problem in stats.unmatched:
        print(f"left out: {problem}")
    if stats.unmatched:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
