"""`tandem dataset validate`: check a chat-JSONL training file line by line before training."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from tandem.answering.house_format import check_answer
from tandem.rag.prompt import context_of, question_of
from tandem.training.dataset import (
    DatasetError,
    Message,
    is_trained,
    iter_jsonl,
    iter_lines,
    load_examples,
    load_tokenizer,
    parse_example,
    tokenize_example,
)

MIN_EXAMPLES, FEW_EXAMPLES, RECOMMENDED_EXAMPLES = 10, 100, 300
NEAR_DUPLICATE_OVERLAP = 0.9  # word-set Jaccard of the questions, for examples with equal answers
MAX_SHOWN = 60

Level = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str
    line: int | None = None  # None: about the whole file


@dataclass
class ValidationReport:
    """Everything `validate_dataset` found, with the figures the summary prints."""

    path: Path
    max_len: int
    findings: list[Finding] = field(default_factory=list)
    n_examples: int = 0  # lines that parsed and fit the schema
    n_trained_turns: int = 0
    n_compliant_turns: int = 0
    n_fallback_turns: int = 0
    token_lengths: list[int] = field(default_factory=list)
    trained_tokens: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, level: Level, message: str, line: int | None = None) -> None:
        self.findings.append(Finding(level, message, line))


@dataclass(frozen=True)
class HeldOutPrompt:
    """A dataset example cut before its first answer: what a model is given, and what a
    format check needs to judge the model's own answer to it."""

    messages: list[Message]
    blocks: int  # context blocks in the last user turn
    release: str
    reference: str  # the dataset's answer


def held_out_prompts(path: Path, n: int) -> list[HeldOutPrompt]:
    """n examples spread evenly over a dataset file, cut before their first answer."""
    examples = load_examples(path)
    prompts = []
    for messages in examples[:: max(1, len(examples) // n)][:n]:
        first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        blocks, release = context_of(messages[first - 1]["content"])
        reference = str(messages[first]["content"])
        prompts.append(HeldOutPrompt(messages[:first], blocks, release or "", reference))
    return prompts


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _check_format(messages: list[Message], number: int, report: ValidationReport) -> None:
    for i, message in enumerate(messages):
        if not is_trained(message):
            continue
        n_blocks, release = context_of(messages[i - 1]["content"])
        result = check_answer(message["content"], n_blocks, release)
        report.n_trained_turns += 1
        report.n_fallback_turns += result.is_fallback
        if result.compliant:
            report.n_compliant_turns += 1
        else:
            report.add(
                "error",
                f"assistant message {i + 1} breaks the house format: " + "; ".join(result.problems),
                number,
            )


def _check_line(number: int, line: str, tokenizer: Any, report: ValidationReport) -> Any:
    """Validate one line; return its messages when it is usable, else None."""
    try:
        messages = parse_example(json.loads(line))
    except json.JSONDecodeError as error:
        report.add("error", f"not valid JSON: {error.msg} (column {error.colno})", number)
        return None
    except DatasetError as error:
        report.add("error", str(error), number)
        return None
    try:
        tokenized = tokenize_example(messages, tokenizer)
    except DatasetError as error:
        report.add("error", str(error), number)
        return None
    length = len(tokenized.input_ids)
    report.token_lengths.append(length)
    report.trained_tokens += tokenized.n_trained
    if length > report.max_len:
        report.add(
            "error",
            f"{length} tokens with the chat template, more than the serving context length "
            f"{report.max_len}; use fewer or shorter context blocks or a shorter conversation",
            number,
        )
    _check_format(messages, number, report)
    return messages


def _check_duplicates(examples: dict[int, list[Message]], report: ValidationReport) -> None:
    seen: dict[str, int] = {}
    by_answer: dict[str, list[tuple[int, set[str]]]] = {}
    for number, messages in examples.items():
        questions = " ".join(question_of(m["content"]) for m in messages if m["role"] == "user")
        answers = " ".join(m["content"] for m in messages if m["role"] == "assistant")
        key = hashlib.sha256(_normalise(questions + " || " + answers).encode()).hexdigest()
        if key in seen:
            report.add("error", f"duplicate of line {seen[key]} (same conversation)", number)
            continue
        seen[key] = number
        words = set(_normalise(questions).split())
        group = by_answer.setdefault(_normalise(answers), [])
        for other, other_words in group:
            overlap = len(words & other_words) / max(1, len(words | other_words))
            if overlap >= NEAR_DUPLICATE_OVERLAP:
                report.add(
                    "warning",
                    f"near-duplicate of line {other} (same answer, "
                    f"{overlap:.0%} of the question words shared)",
                    number,
                )
                break
        group.append((number, words))


def _check_counts(report: ValidationReport) -> None:
    n = report.n_examples
    advice = (
        f"at least {MIN_EXAMPLES} are needed to train, {FEW_EXAMPLES}+ to be useful, "
        f"{RECOMMENDED_EXAMPLES}+ recommended"
    )
    if n < MIN_EXAMPLES:
        report.add("error", f"only {n} usable examples; {advice}")
    elif n < FEW_EXAMPLES:
        report.add("warning", f"only {n} usable examples; {advice}")
    elif n < RECOMMENDED_EXAMPLES:
        report.add("info", f"{n} usable examples; {RECOMMENDED_EXAMPLES}+ are recommended")


def validate_dataset(path: Path, tokenizer: Any, max_len: int = 4096) -> ValidationReport:
    """Check every line of a chat-JSONL file; `max_len` is the serving context length."""
    report = ValidationReport(path=path, max_len=max_len)
    examples: dict[int, list[Message]] = {}
    for number, line in iter_lines(path):
        if line is None:
            report.add("error", "not UTF-8 text; re-save the file as UTF-8", number)
            continue
        messages = _check_line(number, line, tokenizer, report)
        if messages is not None:
            examples[number] = messages
    report.n_examples = len(examples)
    _check_duplicates(examples, report)
    _check_counts(report)
    report.findings.sort(key=lambda f: (f.line or 0, f.level))
    return report


def render_mask(example: list[Message], tokenizer: Any, markers: bool = False) -> Text:
    """The rendered example with trained tokens highlighted (or wrapped in `[[...]]`)."""
    tokenized = tokenize_example(example, tokenizer)
    trained = [
        (a, b)
        for (a, b), label in zip(tokenized.offsets, tokenized.labels, strict=True)
        if label >= 0
    ]
    out, cursor = Text(), 0
    for a, b in _merge(trained):
        out.append(tokenized.text[cursor:a], style="" if markers else "dim")
        piece = tokenized.text[a:b]
        out.append(f"[[{piece}]]" if markers else piece, style="" if markers else "bold green")
        cursor = b
    out.append(tokenized.text[cursor:], style="" if markers else "dim")
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def print_report(report: ValidationReport, console: Console) -> None:
    """Findings as `file:line: level: message`, then the figures and a verdict."""
    styles = {"error": "red", "warning": "yellow", "info": "cyan"}
    for finding in report.findings[:MAX_SHOWN]:
        where = f"{report.path}:{finding.line}" if finding.line else str(report.path)
        line = Text(f"{where}: ")
        line.append(finding.level, style=styles[finding.level])
        console.print(line + Text(f": {finding.message}"), soft_wrap=True)
    if len(report.findings) > MAX_SHOWN:
        console.print(f"... and {len(report.findings) - MAX_SHOWN} more findings")
    lengths = report.token_lengths or [0]
    turns = max(1, report.n_trained_turns)
    console.print(
        f"{report.n_examples} usable examples, {report.n_trained_turns} trained turns "
        f"({report.n_compliant_turns / turns:.0%} in the house format, "
        f"{report.n_fallback_turns / turns:.0%} fallback answers); tokens a line: "
        f"mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)} (limit {report.max_len}); "
        f"{report.trained_tokens} trained tokens",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    verdict = "[green]ok[/]" if report.ok else f"[red]{len(report.errors)} errors[/]"
    console.print(f"{verdict}, {len(report.warnings)} warnings")


def _find_example(path: Path, number: int) -> list[Message] | None:
    for line_number, line in iter_jsonl(path):
        if line_number == number:
            try:
                return parse_example(json.loads(line))
            except (json.JSONDecodeError, DatasetError):
                return None
    return None


def validate_command(file: Path, show_mask: int | None = None) -> int:
    """`tandem dataset validate FILE [--show-mask LINE]`; returns the exit code (1 on errors)."""
    from tandem.settings import get_settings

    settings = get_settings()
    console = Console()
    if not Path(file).is_file():
        console.print(f"error: {file} does not exist", markup=False)
        return 2
    if not (settings.model_path / "tokenizer.json").is_file():
        console.print(
            f"error: the base model is not prepared at {settings.model_path} "
            "(run `tandem up` once, or set TANDEM_MODELS_DIR)",
            markup=False,
        )
        return 2
    tokenizer = load_tokenizer(settings.model_path)
    report = validate_dataset(Path(file), tokenizer, settings.vllm.max_model_len)
    print_report(report, console)
    if show_mask is not None:
        example = _find_example(Path(file), show_mask)
        if example is None:
            console.print(f"line {show_mask} is not a usable example", markup=False)
            return 1
        legend = "trained tokens are highlighted" if console.is_terminal else "trained: [[...]]"
        console.print(f"--- line {show_mask} ({legend}) ---", markup=False)
        marked = render_mask(example, tokenizer, markers=not console.is_terminal)
        console.print(marked, soft_wrap=True)
    return 0 if report.ok else 1
