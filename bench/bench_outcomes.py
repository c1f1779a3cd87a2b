"""Answered / suggested / declined before generation, measured with retrieval only (no vLLM).

    .venv/bin/python bench/bench_outcomes.py [--calibrate] [--curve] [--dump]
    .venv/bin/python bench/bench_outcomes.py --features /tmp/outcomes.json   # keep the signals
    .venv/bin/python bench/bench_outcomes.py --from /tmp/outcomes.json --calibrate  # re-read

Indexes the sample product (v4.1, v4.2) and paperless-ngx v3.0.5 with the real MiniLM
embedder into a temporary store, and for every question of the four sets (short and
customer-voice, each corpus) retrieves as chat does (`retrieval_query`, top_k blocks, the
cross-encoder's best score over them, the subject words against the release's vocabulary),
then prints per set and split:
- answerable questions: answered / suggested / declined, and how often what the customer got
  holds the right page (answered: among the blocks given; suggested: among the suggestions);
- unanswerable questions: answered (a generated claim) / suggested / declined.
`--calibrate` searches the thresholds on the calibration splits only and prints both splits
with them; `--curve` prints the trade-off of `min_evidence` on the held-out splits, and of
`subject_override`. The split is
the item's own (`split` in the customer-voice files), else a fixed hash of the question.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench._kit

from bench._kit import temp_store  # noqa: E402

from tandem.answering.outcome import (  # noqa: E402
    ANSWERED,
    DECLINED,
    SUGGESTED,
    OutcomeGate,
    Signals,
    decide,
    suggestions,
)
from tandem.answering.services import make_cross_encoder, make_question_reader  # noqa: E402
from tandem.answering.turn import retrieval_query  # noqa: E402
from tandem.evaluation.qa import QAItem, load_qa  # noqa: E402
from tandem.evaluation.scores import source_matches  # noqa: E402
from tandem.indexing.reindex import index_release  # noqa: E402
from tandem.rag.embedder import build_embedder  # noqa: E402
from tandem.rag.prompt import ChatMessage  # noqa: E402
from tandem.rag.retriever import Retriever  # noqa: E402
from tandem.settings import PROJECT_ROOT, AnsweringSettings, Settings  # noqa: E402

PAPERLESS = PROJECT_ROOT.parent / "shared" / "corpora" / "paperless-ngx"
SAMPLE = {r: PROJECT_ROOT / "corpus" / r for r in ("v4.1", "v4.2")}
PAPERLESS_V3 = {"v3.0.5": PAPERLESS / "v3.0.5"}
SETS = {  # name -> (QA file, {release: docs folder}); items without a release use the first
    "sample short": (PROJECT_ROOT / "eval" / "sample-product.jsonl", SAMPLE),
    "sample customer": (PROJECT_ROOT / "eval" / "sample-product-customer.jsonl", SAMPLE),
    "paperless short": (PROJECT_ROOT / "eval" / "paperless-ngx.jsonl", PAPERLESS_V3),
    "paperless customer": (PROJECT_ROOT / "eval" / "paperless-ngx-customer.jsonl", PAPERLESS_V3),
}
SPLITS = ("calibration", "held-out")


@dataclass(frozen=True)
class Row:
    set: str
    split: str
    question: str
    answerable: bool
    signals: Signals
    hit: bool | None  # the right page among the top_k blocks given (answerable items)
    suggested_hit: bool | None  # the right page among the suggestions


def split_of(item: QAItem) -> str:
    if item.split:
        return item.split
    key = "\n".join(item.user_turns()).encode()
    return "calibration" if zlib.crc32(key) % 2 == 0 else "held-out"


def _hit(item: QAItem, chunks: Sequence[Any]) -> bool | None:
    if not item.answerable or not item.file:
        return None
    return any(source_matches(item, c.chunk.file, c.chunk.heading) for c in chunks)


def measure(settings: Settings, sets: Sequence[str]) -> tuple[list[Row], dict[str, float]]:
    """Every item retrieved and assessed as chat does; seconds per assessment."""
    documents, queries = build_embedder(settings), build_embedder(settings, "queries")
    answering, top_k = settings.answering, settings.retrieval.top_k
    cross_encoder, reader = make_cross_encoder(settings), make_question_reader(settings)
    rows: list[Row] = []
    timings: dict[str, list[float]] = {"retrieve": [], "assess": []}
    with temp_store(documents.dim) as store:
        retrievers: dict[Path, Retriever] = {}  # docs folder -> its retriever
        for releases in (SAMPLE, PAPERLESS_V3):
            for release, folder in releases.items():
                if not folder.is_dir():
                    raise SystemExit(f"the docs of release {release} are not at {folder}")
                name = f"docs-{len(retrievers)}"
                index_release(store, documents, folder, release, name)
                retrievers[folder] = Retriever(store, queries, name, settings.retrieval.prefetch)
        for set_name in sets:
            qa_file, releases = SETS[set_name]
            gates: dict[str, OutcomeGate] = {}
            for item in load_qa(qa_file):
                release = item.release or next(iter(releases))
                retriever = retrievers[releases[release]]
                gate = gates.setdefault(
                    release, OutcomeGate(retriever, answering, cross_encoder, reader)
                )
                turns = [ChatMessage(role="user", content=t) for t in item.user_turns()]
                query = retrieval_query(turns)
                started = time.perf_counter()
                found = retriever.retrieve(query, top_k)
                middle = time.perf_counter()
                signals = gate.signals(query, found)
                timings["retrieve"].append(middle - started)
                timings["assess"].append(time.perf_counter() - middle)
                pages = suggestions(found.chunks, answering.max_suggestions)
                rows.append(
                    Row(
                        set_name,
                        split_of(item),
                        item.question,
                        item.answerable,
                        signals,
                        _hit(item, found.chunks),
                        _hit(item, pages),
                    )
                )
    return rows, {k: 1000 * sorted(v)[len(v) // 2] for k, v in timings.items() if v}


def outcome_of(row: Row, settings: AnsweringSettings) -> str:
    return decide(row.signals, settings)[0]


def pct(count: int, total: int) -> str:
    return f"{100 * count / total:5.1f} %" if total else "    - "


def shares(rows: Sequence[Row], settings: AnsweringSettings) -> dict[str, Any]:
    """The customer's experience on `rows` under `settings`."""
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    got = {id(r): outcome_of(r, settings) for r in rows}

    def count(part: Sequence[Row], outcome: str) -> int:
        return sum(got[id(r)] == outcome for r in part)

    right_page = sum(
        (got[id(r)] == ANSWERED and bool(r.hit))
        or (got[id(r)] == SUGGESTED and bool(r.suggested_hit))
        for r in answerable
    )
    return {
        "answerable": len(answerable),
        "a_answered": count(answerable, ANSWERED),
        "a_suggested": count(answerable, SUGGESTED),
        "a_declined": count(answerable, DECLINED),
        "a_right_page": right_page,
        "unanswerable": len(unanswerable),
        "u_answered": count(unanswerable, ANSWERED),
        "u_suggested": count(unanswerable, SUGGESTED),
        "u_declined": count(unanswerable, DECLINED),
    }


def line(name: str, split: str, s: dict[str, Any]) -> str:
    a, u = s["answerable"], s["unanswerable"]
    return (
        f"  {name:18s} {split:11s} | {a:3d} answerable: answered {pct(s['a_answered'], a)}"
        f"  suggested {pct(s['a_suggested'], a)}  declined {pct(s['a_declined'], a)}"
        f"  right page {pct(s['a_right_page'], a)} | {u:3d} unanswerable: answered"
        f" {pct(s['u_answered'], u)}  suggested {pct(s['u_suggested'], u)}"
        f"  declined {pct(s['u_declined'], u)}"
    )


def report(rows: Sequence[Row], settings: AnsweringSettings, title: str) -> None:
    print(f"\n{title}: {describe(settings)}")
    for name in SETS:
        for split in SPLITS:
            part = [r for r in rows if r.set == name and r.split == split]
            if part:
                print(line(name, split, shares(part, settings)))


GRID: dict[str, list[Any]] = {  # the thresholds the calibration searches
    "min_evidence": [round(-10.0 + 0.5 * i, 2) for i in range(29)],
    "max_unknown_subject": [0, 1, 99],
    "subject_override": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 99.0],
    "declined_similarity": [0.1, 0.15, 0.2, 0.25],
    "declined_evidence": [-10.0, -9.0, -8.0, -7.0, -6.0, -5.0, -4.0],
}


def describe(settings: AnsweringSettings) -> str:
    return ", ".join(f"{name} {getattr(settings, name)}" for name in GRID)


def cost(rows: Sequence[Row], settings: AnsweringSettings) -> float:
    """Errors on `rows`, each set weighing the same: an unanswerable question answered, an
    answerable one not answered (half an error when the pages offered hold the right one:
    the customer is one click from the answer)."""
    total = 0.0
    for name in SETS:
        part = [r for r in rows if r.set == name]
        if not part:
            continue
        wrong = 0.0
        for r in part:
            got = outcome_of(r, settings)
            if not r.answerable:
                wrong += got == ANSWERED
            elif got != ANSWERED:
                wrong += 0.5 if got == SUGGESTED and r.suggested_hit else 1.0
        total += wrong / len(part)
    return total


def calibrate(rows: Sequence[Row], serving: AnsweringSettings) -> AnsweringSettings:
    """The grid point with the fewest errors on the calibration rows (ties: the median)."""
    scored = []
    for values in itertools.product(*GRID.values()):
        candidate = serving.model_copy(update=dict(zip(GRID, values, strict=True)))
        scored.append((round(cost(rows, candidate), 6), candidate))
    best_cost = min(c for c, _ in scored)
    best = [s for c, s in scored if c == best_cost]
    return best[len(best) // 2]


def curve(rows: Sequence[Row], serving: AnsweringSettings) -> None:
    """The trade-off of each threshold on the held-out rows, the others as `serving`."""
    held = [r for r in rows if r.split == "held-out"]
    for name in ("min_evidence", "subject_override"):
        print(f"\ntrade-off of {name} on the held-out splits (all sets), others as given:")
        print(
            f"  {name:>16s} | answerable answered | right page (answered or suggested) | "
            "unanswerable answered"
        )
        for value in GRID[name]:
            s = shares(held, serving.model_copy(update={name: value}))
            print(
                f"  {value:16.2f} | {pct(s['a_answered'], s['answerable']):>19s} | "
                f"{pct(s['a_right_page'], s['answerable']):>34s} | "
                f"{pct(s['u_answered'], s['unanswerable']):>21s}"
            )


def dump(rows: Sequence[Row], settings: AnsweringSettings) -> None:
    for r in sorted(rows, key=lambda r: (r.set, r.answerable, r.signals.evidence or 0.0)):
        s = r.signals
        print(
            f"{r.set[:12]:12s} {r.split[:5]} {'A' if r.answerable else 'U'} "
            f"{outcome_of(r, settings)[:4]} ev {s.evidence or 0:6.2f} sim {s.similarity:.2f} "
            f"hit {r.hit!s:5s} unk {','.join(s.unknown_subject)[:20]:20s} "
            f"subj {','.join(s.subject)[:30]:30s} {r.question[:70]}"
        )


def save(rows: Sequence[Row], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in rows]))


def load(path: Path) -> list[Row]:
    rows = []
    for raw in json.loads(path.read_text()):
        signals = raw.pop("signals")
        for key in ("subject", "unknown_subject"):
            signals[key] = tuple(signals[key])
        rows.append(Row(**raw, signals=Signals(**signals)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=Path, help="write every item's signals here")
    parser.add_argument("--from", dest="source", type=Path, help="read signals from here")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--curve", action="store_true")
    parser.add_argument("--dump", action="store_true", help="print every item's signals")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    args = parser.parse_args()
    settings = Settings()
    serving = settings.answering
    if args.source:
        rows = load(args.source)
    else:
        rows, timings = measure(settings, args.sets.split(","))
        print(
            f"median ms per question (2 shared cores): retrieval {timings['retrieve']:.1f}, "
            f"cross-encoder over {settings.retrieval.top_k} blocks + subject "
            f"{timings['assess']:.1f}"
        )
        if args.features:
            save(rows, args.features)
    if args.dump:
        dump(rows, serving)
    for name in SETS:
        hits = [r for r in rows if r.set == name and r.hit is not None]
        if hits:
            print(
                f"{name}: right page in the top {settings.retrieval.top_k} "
                f"{sum(bool(r.hit) for r in hits)} of {len(hits)}, among the suggested pages "
                f"{sum(bool(r.suggested_hit) for r in hits)}"
            )
    report(rows, serving, "serving settings")
    if args.calibrate:
        calibrated = calibrate([r for r in rows if r.split == "calibration"], serving)
        report(rows, calibrated, "calibrated on the calibration splits")
    if args.curve:
        curve(rows, serving)


if __name__ == "__main__":
    main()
