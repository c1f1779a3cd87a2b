"""What the admin API and the CLI call: plan, promote, roll back, list — and the watch.

`Releases` is built once per app (its lifespan) around the app's stores, registry and adapter
swapper. `watch` runs in the background: it shares this replica's per-pair counts, finishes
or undoes a promote a crash interrupted, marks plans whose process died, and rolls a canary
back when it does worse than the serving pair.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from tandem.adapters.registry import AdapterRegistry
from tandem.adapters.swap import AdapterSwapper
from tandem.errors import Conflict, NotFound
from tandem.evaluation.gate import Gate
from tandem.indexing.builds import live_build
from tandem.indexing.embed_process import EmbedderFactory
from tandem.indexing.releases import allowed_index_path
from tandem.jobs import Job, JobManager
from tandem.rag.embedder import Embedder
from tandem.releases.figures import PairCounters, canary_verdict, figures
from tandem.releases.gate import allowed_qa_path
from tandem.releases.plan import AnswerFor, PlanRequest, ReleasePlanner
from tandem.releases.pointer import ReleasePointer, ServingPair
from tandem.releases.promote import PROCESS, Promoter, process_alive
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.feedback import FeedbackLog
from tandem.stores.state import PairPointer, ReleasePair

log = logging.getLogger("tandem.releases")
WATCHER = "tandem (canary watch)"
UNFINISHED = {"building", "evaluating"}


@dataclass
class Releases:
    settings: Settings
    stores: Stores
    embedder: Embedder
    registry: AdapterRegistry
    swapper: AdapterSwapper
    jobs: JobManager
    answer_for: AnswerFor
    feedback: FeedbackLog | None = None
    index_embedder: EmbedderFactory | None = None
    counters: PairCounters = field(default_factory=PairCounters)

    def __post_init__(self) -> None:
        self.pointer = ReleasePointer(self.stores.state, self.settings.releases.pointer_ttl_s)
        self.promoter = Promoter(
            self.settings, self.stores, self.registry, self.swapper, self.pointer
        )
        self.planner = ReleasePlanner(
            self.settings, self.stores, self.embedder, self.registry, self.promoter,
            self.answer_for, self.index_embedder,
        )  # fmt: skip

    def start_plan(
        self,
        release: str,
        path: str,
        adapter: str | None,
        qa: str | None,
        gate: Gate,
        loop: asyncio.AbstractEventLoop,
        docs_release: str | None = None,
    ) -> Job:
        """Check the request, then build and gate the candidate in a background job (its
        async steps run on `loop`, the app's)."""
        current = self.stores.state.pair_pointer()
        self.planner.check(release, current)
        folder = allowed_index_path(path, self.settings.index_roots)
        qa_file = allowed_qa_path(qa, self.settings.releases.qa_roots) if qa else None
        label = adapter or self.planner.default_adapter(current)
        if label is not None:
            self.promoter.adapter(label)  # 404 for an unknown slot or version
        if (build := live_build(self.stores.state)) is not None:
            raise Conflict(f"an index build is running: {build['release']}; plan after it")
        request = PlanRequest(release, folder, label, qa_file, gate, docs_release)

        def run(coroutine: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

        holder: list[Job] = []
        submitted = threading.Event()  # the job's thread may start before `submit` returns

        def job(progress: Any) -> dict[str, Any]:
            submitted.wait()
            return self.planner.run(request, holder[0].id, progress, run)

        holder.append(self.jobs.submit("release", job))
        submitted.set()
        return holder[0]

    async def promote(
        self, release: str, by: str, force: bool = False, canary: float | None = None
    ) -> dict[str, Any]:
        return await self.promoter.promote(release, by, force, canary)

    async def rollback(self, by: str) -> dict[str, Any]:
        return await self.promoter.rollback(by)

    def overview(self) -> dict[str, Any]:
        """Serving, canary, kept and candidate pairs with their gate reports and figures."""
        current = self.stores.state.pair_pointer()
        pairs = {p.release: p for p in self.stores.state.release_pairs()}
        counts = {
            r: f.as_dict() for r, f in figures(self.stores.state, self.feedback, current).items()
        }

        def view(entry: dict[str, Any] | None, role: str) -> dict[str, Any] | None:
            if entry is None:
                return None
            pair = pairs.get(entry["release"])
            found = pair.as_dict() if pair else {}
            return {**found, **entry, "role": role, "figures": counts.get(entry["release"])}

        placed = {e["release"] for e in (current.serving, current.canary, *current.kept) if e}
        candidates = [
            {**p.as_dict(), "role": "candidate"}
            for p in reversed(pairs.values())
            if p.release not in placed and p.status != "replaced"
        ]
        return {
            "serving": view(current.serving, "serving"),
            "canary": view(current.canary, "canary"),
            "kept": [view(e, "kept") for e in reversed(current.kept)],
            "candidates": candidates,
            "pending": current.pending,
            "journal": list(reversed(current.journal[-20:])),
            "drift": self._drift(current),
        }

    def pair(self, release: str) -> dict[str, Any]:
        pair = self.stores.state.release_pair(release)
        if pair is None:
            raise NotFound(f"no release {release!r}")
        return pair.as_dict()

    def serving_pair_of(self, release: str) -> ServingPair:
        """`release` as a turn would answer with it (its docs must be built)."""
        pair = self.stores.state.release_pair(release)
        if pair is None:
            raise NotFound(f"no release {release!r}")
        if not pair.collection:
            raise Conflict(f"release {release} has no docs yet ({pair.status})")
        return ServingPair.of(pair.entry())

    def _drift(self, current: PairPointer) -> list[str]:
        """Derived pointers that disagree with the serving pair (someone moved them by hand)."""
        serving = current.serving
        if serving is None or current.pending is not None:
            return []
        found = []
        docs = self.stores.docs.pointer_target(self.settings.qdrant.alias)
        if docs != serving["collection"]:
            found.append(f"the docs alias serves {docs}, the pair {serving['collection']}")
        if adapter := serving.get("adapter"):
            slot, _, version = adapter.partition("@")
            active = self.registry.pointer(slot).get("active")
            if active != version:
                found.append(f"{slot} has {active} active, the pair {version}")
        return found

    async def watch(self) -> None:
        """Every `watch_interval_s`: share counts, converge, mark dead plans, judge the canary."""
        while True:
            try:
                await self.tick()
            except Exception:  # the watch must outlive any one bad round
                log.exception("release watch round failed")
            await asyncio.sleep(self.settings.releases.watch_interval_s)

    async def tick(self) -> None:
        await anyio.to_thread.run_sync(self.counters.flush, self.stores.state)
        note = await self.promoter.converge(time.time())
        if note:
            log.warning("release pointer: %s", note)
        await anyio.to_thread.run_sync(self.mark_dead_plans)
        await self.judge_canary()

    def mark_dead_plans(self) -> list[str]:
        """Plans whose process died (or whose job here ended unrecorded) say so in their record."""
        dead: list[str] = []
        for pair in self.stores.state.release_pairs():
            if pair.status not in UNFINISHED or self._plan_alive(pair):
                continue
            why = "interrupted: the process running its plan stopped; plan it again"
            self.stores.state.save_release_pair(replace(pair, status="error", error=why))
            dead.append(pair.release)
        return dead

    def _plan_alive(self, pair: ReleasePair) -> bool:
        if pair.owner.get("process") == PROCESS:
            job = self.jobs.jobs.get(pair.job or "")
            return job is not None and job.status in {"queued", "running"}
        return process_alive(pair.owner)

    async def judge_canary(self) -> dict[str, Any] | None:
        """Roll the canary back when its figures exceed the serving pair's by the margins."""
        current = await anyio.to_thread.run_sync(self.stores.state.pair_pointer)
        if current.canary is None or current.serving is None or current.pending is not None:
            return None
        found = await anyio.to_thread.run_sync(figures, self.stores.state, self.feedback, current)
        serving, canary = found[current.serving["release"]], found[current.canary["release"]]
        reason = canary_verdict(serving, canary, self.settings.releases)
        if reason is None:
            return None
        log.warning("rolling back canary %s: %s", canary.release, reason)
        await self._note_rollback(canary.release, reason)
        return await self.promoter.rollback(WATCHER, reason)

    async def _note_rollback(self, release: str, reason: str) -> None:
        pair = await anyio.to_thread.run_sync(self.stores.state.release_pair, release)
        if pair is not None:
            noted = replace(pair, error=f"canary rolled back: {reason}")
            await anyio.to_thread.run_sync(self.stores.state.save_release_pair, noted)
