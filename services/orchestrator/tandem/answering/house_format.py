"""The house answer format, checked rule by rule (see DESIGN.md, "The house answer format")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tandem.rag.prompt import FALLBACK_TEMPLATE

MAX_WORDS = 180
RULES = ("direct_opening", "steps_list", "sources_line", "fallback", "tone_length")

_SOURCES_LINE = re.compile(r"^Sources:\s*(\[\d+\](?:,\s*\[\d+\])*)\s*$")
_NUMBERED_ITEM = re.compile(r"^\s*(\d+)[.)]\s+\S")
_CITATION = re.compile(r"\[(\d+)\]")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_FALLBACK_START = FALLBACK_TEMPLATE.split("{release}")[0].strip()
_AI_TALK = re.compile(r"\bas an ai\b|\blanguage model\b|\bi am an ai\b", re.IGNORECASE)


@dataclass
class FormatReport:
    """Which house rules an answer follows; `compliant` when all of them do."""

    rules: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    is_fallback: bool = False
    cited: list[int] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return all(self.rules.values())

    def fail(self, rule: str, problem: str) -> None:
        self.rules[rule] = False
        self.problems.append(f"{rule}: {problem}")


def is_fallback(answer: str) -> bool:
    """The answer is (or contains) the house fallback sentence."""
    return _FALLBACK_START in answer


def _count_sentences(paragraph: str) -> int:
    text = re.sub(r"\b(e\.g|i\.e|etc|vs|approx)\.", "", paragraph, flags=re.IGNORECASE)
    text = re.sub(r"\d+\.\d+", "0", text)  # version numbers and decimals are not full stops
    return max(1, len(_SENTENCE_END.findall(text))) if text.strip() else 0


def _check_fallback(answer: str, release: str | None, report: FormatReport) -> None:
    report.is_fallback = True
    expected = FALLBACK_TEMPLATE.format(release=release) if release else None
    if expected and answer.strip() != expected:
        report.fail("fallback", f"fallback must be exactly {expected!r}")
    elif not expected and not re.fullmatch(
        re.escape(FALLBACK_TEMPLATE).replace(re.escape("{release}"), r"\S+"), answer.strip()
    ):
        report.fail("fallback", "fallback must be the fixed sentence and nothing else")


def _check_steps(body: list[str], report: FormatReport) -> None:
    numbered = [i for i, line in enumerate(body) if _NUMBERED_ITEM.match(line)]
    if "Steps:" not in [line.strip() for line in body]:
        if numbered:
            report.fail("steps_list", "a numbered list needs a 'Steps:' line before it")
        return
    start = [line.strip() for line in body].index("Steps:")
    items = [int(m.group(1)) for line in body[start + 1 :] if (m := _NUMBERED_ITEM.match(line))]
    if len(items) < 2 or items != list(range(1, len(items) + 1)):
        report.fail("steps_list", "'Steps:' must be followed by a list numbered 1., 2., ...")


def _check_sources(lines: list[str], n_blocks: int, report: FormatReport) -> list[str]:
    last = lines[-1].strip() if lines else ""
    match = _SOURCES_LINE.match(last)
    if n_blocks == 0:
        if last.startswith("Sources:"):
            report.fail("sources_line", "no context blocks were given, so nothing can be cited")
        return lines
    if not match:
        report.fail("sources_line", "the last line must be 'Sources: [n], [m]'")
        return lines
    cited = [int(n) for n in _CITATION.findall(match.group(1))]
    report.cited = cited
    bad = [n for n in cited if not 1 <= n <= n_blocks]
    if bad or len(set(cited)) != len(cited):
        report.fail("sources_line", f"cites blocks that were not given or twice: {cited}")
    return lines[:-1]


def check_answer(answer: str, n_blocks: int, release: str | None = None) -> FormatReport:
    """Check `answer` given that context blocks [1]..[n_blocks] were in the prompt."""
    report = FormatReport(rules=dict.fromkeys(RULES, True))
    text = answer.strip()
    if not text:
        for rule in ("direct_opening", "sources_line"):
            report.fail(rule, "the answer is empty")
        return report
    if _AI_TALK.search(text):
        report.fail("tone_length", "talks about being an AI")
    if len(text.split()) > MAX_WORDS:
        report.fail("tone_length", f"{len(text.split())} words, more than {MAX_WORDS}")
    if is_fallback(text):
        _check_fallback(text, release, report)
        return report
    lines = [line for line in text.splitlines() if line.strip()]
    body = _check_sources(lines, n_blocks, report)
    stray = [int(n) for n in _CITATION.findall("\n".join(body))]
    if any(not 1 <= n <= n_blocks for n in stray):
        report.fail("sources_line", f"inline citations of blocks not given: {stray}")
    _check_steps(body, report)
    opening = []
    for line in body:
        if line.strip() == "Steps:" or _NUMBERED_ITEM.match(line):
            break
        opening.append(line.strip())
    sentences = _count_sentences(" ".join(opening))
    if not 1 <= sentences <= 2:
        report.fail("direct_opening", f"opens with {sentences} sentences, not one or two")
    return report
