"""DATASET_CARD.md for the support adapter's data: how it was made, counts, checks, license."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tandem.training.dataset import file_sha256, load_tokenizer
from tandem.training.validate import ValidationReport, validate_dataset

TRAIN_MAX_LEN = 1024  # the recipes' max_len: longer examples are left out of training
# Each answer style's files in data/: `house` answers in the item's words, `copy` quotes blocks.
SPLIT_FILES = {
    "house": {"train": "train.jsonl", "eval": "eval.jsonl"},
    "copy": {"train": "train-copy.jsonl", "eval": "eval-copy.jsonl"},
}
COPY_MARKER = "<!-- copy-style data: `python -m tandem.training.dataset_build --style copy` -->"


@dataclass
class BuildStats:
    """What a build of the training data used and made (the card describes it)."""

    seed: int
    top_k: int
    fallback_share: float
    eval_share: float
    examples: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    fallback: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    two_turn: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    items: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    gold_retrieved: int = 0  # the retriever had a right block in its top-k by itself
    gold_swapped: int = 0
    skipped_phrasings: int = 0  # duplicates after normalising case and punctuation
    releases: dict[str, int] = field(default_factory=dict)  # chunks indexed per release
    unmatched: list[str] = field(default_factory=list)  # items left out: no right block found
    style: str = "house"  # a key of SPLIT_FILES
    copied: int = 0  # copy style: answered turns quoted from the blocks ...
    copied_steps: int = 0  # ... of which with `Steps:` from a block's own list
    authored: int = 0  # ... and turns in the item's own words (no block sentence held them)
    customer_phrasings: int = 0  # copy style: longer ticket-style phrasings added


def _check_rows(reports: dict[str, ValidationReport]) -> str:
    rows = []
    for split, report in reports.items():
        lengths = sorted(report.token_lengths) or [0]
        turns = max(1, report.n_trained_turns)
        rows.append(
            f"| {split} | {report.n_examples} | {len(report.errors)} | {len(report.warnings)} | "
            f"{report.n_compliant_turns / turns:.1%} | {sum(lengths) / len(lengths):.0f} | "
            f"{lengths[len(lengths) // 2]} | {lengths[-1]} | "
            f"{sum(n > TRAIN_MAX_LEN for n in lengths)} |"
        )
    return "\n".join(rows)


def _count_rows(stats: BuildStats) -> str:
    return "\n".join(
        f"| {split} | {stats.items[split]} | {stats.examples[split]} | {stats.fallback[split]} "
        f"({stats.fallback[split] / max(1, stats.examples[split]):.0%}) | {stats.two_turn[split]} |"
        for split in ("train", "eval")
    )


def _hashes(data: Path, names: list[str]) -> str:
    return "\n".join(f"- `data/{name}`: sha256 `{file_sha256(data / name)}`" for name in names)


def write_dataset_card(adapter_dir: Path, stats: BuildStats) -> Path:
    """Validate the written splits and describe them in `adapter_dir/DATASET_CARD.md`.

    The house build writes the card; a copy build writes its own section at the end. Each
    keeps what the other wrote, so one card describes every file under data/.
    """
    from tandem.settings import get_settings

    settings = get_settings()
    tokenizer = load_tokenizer(settings.model_path)
    data = adapter_dir / "data"
    files = SPLIT_FILES[stats.style]
    reports = {
        split: validate_dataset(data / files[split], tokenizer, settings.vllm.max_model_len)
        for split in ("train", "eval")
    }
    written = (
        _copy_section(stats, reports, data)
        if stats.style == "copy"
        else _house_card(stats, reports, data, settings.vllm.max_model_len)
    )
    card = adapter_dir / "DATASET_CARD.md"
    old = card.read_text(encoding="utf-8") if card.is_file() else ""
    card.write_text(merge_card(old, stats.style, written), encoding="utf-8")
    return card


def merge_card(old: str, style: str, written: str) -> str:
    """The card with `written` in its style's place (house: the card, copy: the section after
    COPY_MARKER), keeping the other style's part of `old`."""
    house, _, copy = old.partition(COPY_MARKER)
    if style == "copy":
        return f"{house.rstrip()}\n\n{COPY_MARKER}{written}"
    return f"{written}\n{COPY_MARKER}{copy}" if copy else written


def _house_card(
    stats: BuildStats, reports: dict[str, ValidationReport], data: Path, context: int
) -> str:
    retrieved = stats.gold_retrieved + stats.gold_swapped
    counts = _count_rows(stats)
    hashes = _hashes(data, ["qa_items.jsonl", "train.jsonl", "eval.jsonl"])
    releases = ", ".join(f"{r} ({n} chunks)" for r, n in sorted(stats.releases.items()))
    text = f"""# Support adapter data — dataset card

Training data for the `support` LoRA adapter: it teaches the house answer format of
`DESIGN.md` (direct answer, `Steps:` list for procedures, last line `Sources: [n]`, the fixed
fallback sentence when the context does not hold the answer) on retrieval-shaped prompts.

## How it was made

`python -m tandem.training.dataset_build` (seed {stats.seed}; re-running writes the same files).

1. **Sources**: `data/qa_items.jsonl` — one item per documented fact of the sample product
   (Kestrel) in `corpus/`: its release, page, heading, several phrasings written like real
   support tickets (typos, vague wording, very short and very long), the answer sentence(s),
   the steps of a procedure, and sometimes a follow-up question with its own answer.
2. **Retrieval**: each release ({releases}) is indexed with Tandem's own indexer
   (`tandem.indexing.reindex.index_release`) into a temporary embedded Qdrant, and every
   phrasing is sent to Tandem's own `Retriever` (dense + BM25, RRF fusion), top {stats.top_k}.
3. **Right block**: a chunk of the item's page whose heading path equals or ends with the
   item's heading. When the retriever's top {stats.top_k} missed it, the lowest-ranked block is
   dropped and the right one goes in at a random position ({stats.gold_swapped} of
   {retrieved} answered turns; the retriever found it by itself in {stats.gold_retrieved}).
4. **Prompt**: `tandem.rag.prompt.build_messages` — the function the orchestrator uses at
   serving time — so system prompt, context blocks and question are laid out exactly as served.
5. **Answer**: the item's answer in the house format; `Sources:` names the number(s) of the
   right block(s). In {stats.fallback_share:.0%} of the examples (seeded pick) every right block is
   removed, the next retrieved distractors fill in (skipping any that hold half of the
   answer's words), and the answer is `fallback_sentence(release)`.
6. **Follow-ups** become two-turn conversations: the first exchange is history (weight 0,
   not trained), the follow-up is retrieved with the orchestrator's own `retrieval_query`.
7. **Split by item** (items about the same section in both releases stay together):
   about {stats.eval_share:.0%} of the examples go to `eval.jsonl`, no item is in both files.
   {stats.skipped_phrasings} phrasings that repeated another after normalising were dropped.

## Counts

| split | items | examples | fallback | two-turn |
| --- | --- | --- | --- | --- |
{counts}

## Checks

`tandem dataset validate` on each file (base model chat template, serving context
{context} tokens; house format checked by `tandem.answering.house_format.check_answer`):

| split | examples | errors | warnings | house format | mean tokens | median | max | \
over {TRAIN_MAX_LEN} |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{_check_rows(reports)}

Examples longer than a recipe's `max_len` are counted and left out by `tandem train`.

## Files

{hashes}

## License

The sample docs in `corpus/` and the Q&A items are this project's own writing about a
fictional product; the data is released under the Apache-2.0 license, like the project.
"""
    return text


def _copy_section(stats: BuildStats, reports: dict[str, ValidationReport], data: Path) -> str:
    answered = stats.copied + stats.authored
    items = stats.items["train"] + stats.items["eval"]
    retrieved = stats.gold_retrieved + stats.gold_swapped
    return f"""
## Copy-style data (`train-copy.jsonl`, `eval-copy.jsonl`)

`python -m tandem.training.dataset_build --style copy` (seed {stats.seed}): the same items,
retrieval, prompts, fallback pick ({stats.fallback_share:.0%}), follow-ups and split by section as
above, with two differences. The 135M model garbles what it restates; these answers teach it
to quote.

1. **Answers quote the right block** (`tandem.training.copy_target`): the opening is the one
   or two sentences of the cited block(s) that hold most of the item's answer terms (content
   words and every number), in the block's own order; when the item is a procedure and a
   block holds a numbered or bulleted list matching its steps, `Steps:` lists that list's
   items verbatim. Only Markdown emphasis and admonition labels ("Note: ... — ") are dropped.
   `Sources:` names the block(s) quoted. {stats.copied} of {answered} answered turns are quoted
   ({stats.copied_steps} of them with `Steps:` from a block's list); {stats.authored} keep the
   item's own words, because no sentence of the right block holds the answer or at least half
   of its numbers (they sit in a table or a code block). The right block came from the retriever in
   {stats.gold_retrieved} of {retrieved} turns and was swapped in for {stats.gold_swapped}.
2. **Longer phrasings**: {stats.customer_phrasings} of {items} items (a seeded pick) gain one
   ticket-style phrasing of their shortest question, a line of context around it ("Hello
   support, I looked through the settings myself but could not work it out. ..."). The
   held-out customer-voice question sets under `eval/` are not used.

### Counts

| split | items | examples | fallback | two-turn |
| --- | --- | --- | --- | --- |
{_count_rows(stats)}

`tandem train` caps the fallback share further where a recipe says so (`fallback_share`).

### Checks

| split | examples | errors | warnings | house format | mean tokens | median | max | \
over {TRAIN_MAX_LEN} |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{_check_rows(reports)}

### Files

{_hashes(data, ["qa_items.jsonl", "train-copy.jsonl", "eval-copy.jsonl"])}
"""
