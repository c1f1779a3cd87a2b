"""The release machinery of a running app: built in its lifespan, counting every turn, and
the canary watch started (the app's factory calls `start_releases`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tandem.adapters.swap import AdapterSwapper
from tandem.api.deps import Services
from tandem.jobs import JobManager
from tandem.releases.candidate import CandidateChats
from tandem.releases.figures import PairMetricsObserver
from tandem.releases.plan import AnswerFor
from tandem.releases.service import Releases


async def start_releases(
    services: Services,
    swapper: AdapterSwapper,
    jobs: JobManager,
    answers: Callable[[CandidateChats], AnswerFor],
) -> tuple[Releases, asyncio.Task[None]]:
    """Build `Releases`, count turns per pair, finish what a crash left, start the watch.

    `answers` says how a pair is asked (the API answers as `POST /v1/chat` does).
    """
    chats = CandidateChats(services.settings, services.retriever, services.registry, services.pool)
    releases = Releases(
        services.settings, services.stores, services.embedder, services.registry, swapper, jobs,
        answers(chats), services.feedback, services.index_embedder,
    )  # fmt: skip
    services.chat.observers.append(PairMetricsObserver(releases.pointer, releases.counters))
    await releases.tick()  # a promote a crash interrupted is finished before anything serves
    return releases, asyncio.create_task(releases.watch())
