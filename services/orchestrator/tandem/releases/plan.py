"""Plan a release: build the candidate pair, then gate it — nothing that serves changes.

A plan job reads top to bottom: index (the docs blue/green into a new collection, compared
with what serves, published to the candidate pointer only), load (the adapter version loaded
and probed on every vLLM replica, not active), eval (the gate asks the candidate pair through
the real chat path). The pair record says where it got to; its status ends `gated` (the gate
report says passed or not) or `error`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from tandem.adapters.registry import AdapterRegistry
from tandem.errors import BadInput, Conflict, TandemError
from tandem.evaluation.gate import Gate
from tandem.evaluation.harness import Outcome
from tandem.evaluation.qa import QAItem
from tandem.indexing.embed_process import EmbedderFactory, job_model
from tandem.indexing.reindex import index_release
from tandem.jobs import ProgressFn
from tandem.rag.embedder import Embedder
from tandem.rag.prompt import ChatMessage
from tandem.releases.gate import HYBRID, gate_questions, run_gate
from tandem.releases.pointer import ServingPair
from tandem.releases.promote import Promoter, owner
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.state import PairPointer, ReleasePair

T = TypeVar("T")
CANDIDATE_POINTER = "release-candidate"  # keeps the newest candidate's collection
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
Answer = Callable[
    [list[ChatMessage]], Coroutine[Any, Any, dict[str, Any]]
]  # one chat, as /v1/chat says
AnswerFor = Callable[[ServingPair], Answer]  # the candidate route's chat, for one pair
RunAsync = Callable[[Coroutine[Any, Any, T]], T]  # runs a coroutine on the app's event loop


@dataclass(frozen=True)
class PlanRequest:
    release: str
    folder: Path
    adapter: str | None  # "slot@version"; resolved before the job starts
    qa: Path | None
    gate: Gate
    docs_release: str | None = None  # the docs' own release name; default: `release`

    @property
    def docs(self) -> str:
        return self.docs_release or self.release


@dataclass
class ReleasePlanner:
    """What a plan job uses; `run` carries the async steps to the app's event loop."""

    settings: Settings
    stores: Stores
    embedder: Embedder
    registry: AdapterRegistry
    promoter: Promoter
    answer_for: AnswerFor
    index_embedder: EmbedderFactory | None = None

    def check(self, release: str, current: PairPointer) -> None:
        """409 for a release id that serves, runs as the canary or is kept for rollback."""
        if not RELEASE_ID.match(release):
            raise BadInput(f"release {release!r}: letters, digits, '.', '_' or '-', up to 64")
        taken = [e for e in (current.serving, current.canary, *current.kept) if e]
        if any(e["release"] == release for e in taken):
            raise Conflict(f"release {release} has served; release ids are never reused")

    def default_adapter(self, current: PairPointer) -> str | None:
        """Without `--adapter`: the serving pair's adapter, else the default slot's active one."""
        if current.serving is not None:
            adapter = current.serving.get("adapter")
            return str(adapter) if adapter else None
        slot = self.settings.default_slot
        return self.registry.active(slot).label if self.registry.versions(slot) else None

    def run(
        self, request: PlanRequest, job: str, progress: ProgressFn, run: RunAsync[Any]
    ) -> dict[str, Any]:
        """The job: index → load → eval, the pair record saved after each."""
        pair = ReleasePair(
            request.release,
            docs_release=request.docs,
            adapter=request.adapter,
            created=time.time(),
            job=job,
            qa=str(request.qa) if request.qa else None,
            owner=owner(),
        )
        self.stores.state.save_release_pair(pair)
        try:
            pair = self._index(pair, request, progress)
            self._load(pair, progress, run)
            pair = self._evaluate(pair, request, progress, run)
        except Exception as error:
            failed = replace(pair, status="error", error=f"{type(error).__name__}: {error}")
            self.stores.state.save_release_pair(failed)
            raise
        return pair.as_dict()

    def _index(self, pair: ReleasePair, request: PlanRequest, progress: ProgressFn) -> ReleasePair:
        def say(stage: str, done: int, total: int) -> None:
            progress("index", done, total)

        settings = self.settings
        with job_model(self.embedder, self.index_embedder, settings.index.embed_nice) as model:
            report = index_release(
                self.stores, self.embedder, request.folder, request.docs,
                settings.qdrant.alias, say, keep=settings.qdrant.keep_releases, model=model,
                pointer=CANDIDATE_POINTER,
            )  # fmt: skip
        self._replace_older_candidates(request.release)
        built = replace(pair, collection=report.collection, status="evaluating")
        built = replace(built, changes=report.changes)
        self.stores.state.save_release_pair(built)
        return built

    def _replace_older_candidates(self, release: str) -> None:
        """The candidate pointer moved on: older candidates' docs are no longer kept."""
        current = self.stores.state.pair_pointer()
        live = {e["release"] for e in (current.serving, current.canary, *current.kept) if e}
        for older in self.stores.state.release_pairs():
            waiting = older.status in {"gated", "evaluating", "building"}
            if waiting and older.release not in live and older.release != release:
                self.stores.state.save_release_pair(replace(older, status="replaced"))

    def _load(self, pair: ReleasePair, progress: ProgressFn, run: RunAsync[Any]) -> None:
        replicas = len(self.promoter.swapper.pool.clients)
        progress("load", 0, replicas)
        if pair.adapter is not None:
            adapter = self.promoter.adapter(pair.adapter)
            run(self.promoter.swapper.validate(adapter))
            run(self.promoter.swapper.load_everywhere(adapter))
        progress("load", replicas, replicas)

    def _evaluate(
        self, pair: ReleasePair, request: PlanRequest, progress: ProgressFn, run: RunAsync[Any]
    ) -> ReleasePair:
        limit = self.settings.releases.max_derived_questions
        asked, derived = gate_questions(request.qa, pair.docs_release, pair.changes, limit)
        answer = self.answer_for(ServingPair.of(pair.entry()))
        out = self.settings.data_dir / "releases" / pair.release / "gate.json"
        report = run_gate(request.gate, asked, derived, _asker(answer, run), progress, out)
        gated = replace(pair, status="gated", gate=report)
        self.stores.state.save_release_pair(gated)
        return gated


def _asker(answer: Answer, run: RunAsync[Any]) -> Callable[[QAItem], Outcome]:
    """One question through the candidate chat; a refused or failed turn is a failed question."""

    def ask(item: QAItem) -> Outcome:
        conversation = [ChatMessage(role="user", content=turn) for turn in item.user_turns()]
        started = time.perf_counter()
        try:
            response = run(answer(conversation))
        except TandemError as error:
            elapsed = (time.perf_counter() - started) * 1000
            return Outcome(item, HYBRID, None, f"{type(error).__name__}: {error}", elapsed, 1)
        return Outcome(item, HYBRID, response, None, (time.perf_counter() - started) * 1000, 1)

    return ask
