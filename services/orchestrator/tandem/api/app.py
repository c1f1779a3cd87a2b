"""The app factory and its lifespan, which opens and closes every client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from tandem import __version__
from tandem.adapters.registry import AdapterRegistry
from tandem.adapters.swap import AdapterSwapper
from tandem.adapters.upkeep import keep_adapters_loaded
from tandem.answering.services import make_cross_encoder, make_question_reader
from tandem.answering.turn import ChatService
from tandem.api.deps import Services
from tandem.api.errors import install_error_handlers
from tandem.api.middleware import BodyLimitAndMetrics
from tandem.api.rate_limit import rate_limiter
from tandem.api.release_lifespan import start_releases
from tandem.api.routes import (
    adapters,
    admin,
    chat,
    feedback,
    handoff,
    health,
    openai,
    releases,
    widget,
)
from tandem.handoffs.delivery import HandoffDelivery
from tandem.indexing.embed_process import EmbedderFactory, index_embedder_factory
from tandem.indexing.history import recover_interrupted_builds
from tandem.jobs import JobManager
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import Embedder, build_embedder
from tandem.rag.retriever import Retriever
from tandem.releases.pointer import ReleasePointer
from tandem.settings import Settings, get_settings
from tandem.stores.deployment import Stores, open_stores

log = logging.getLogger("tandem")
ServicesFactory = Callable[[Settings], Services]


def build_services(
    settings: Settings,
    embedder: Embedder | None = None,
    *,
    stores: Stores | None = None,
    pool: VllmPool | None = None,
    index_embedder: EmbedderFactory | None = None,
) -> Services:
    """The real clients: the doc and state stores, the in-process embedder, vLLM over HTTP.

    Each client the settings would open can be passed in instead (tests pass fakes here).
    Index jobs embed in a child process (TANDEM_INDEX__EMBED_PROCESS) when the embedder
    comes from the settings, or when `index_embedder` says how to build one there.
    """
    if embedder is None:
        embedder = build_embedder(settings, "queries")
        index_embedder = index_embedder or index_embedder_factory(settings)
    stores = stores or open_stores(settings, embedder.dim)
    retriever = Retriever(stores, embedder, settings.qdrant.alias, settings.retrieval.prefetch)
    registry = AdapterRegistry(settings.adapters_dir, stores.state)
    pool = pool or VllmPool.from_settings(settings.vllm)
    answers, handoffs = stores.answers, stores.handoffs  # where open_stores keeps them
    chat_service = ChatService(
        settings,
        retriever,
        registry,
        pool,
        answers=answers,
        cross_encoder=make_cross_encoder(settings),
        reader=make_question_reader(settings),
        releases=ReleasePointer(stores.state, settings.releases.pointer_ttl_s),
    )
    return Services(
        settings,
        stores,
        embedder,
        retriever,
        registry,
        pool,
        chat_service,
        feedback=answers,
        handoffs=handoffs,
        index_embedder=index_embedder,
    )


def handoff_delivery(services: Services) -> HandoffDelivery | None:
    """The worker that sends handoffs to TANDEM_HANDOFF__WEBHOOK_URL; None when unset."""
    if services.handoffs is None or not services.settings.handoff.webhook_url:
        return None
    return HandoffDelivery(services.handoffs, services.settings.handoff)


def freeze_heap() -> None:
    """Put what start-up built out of the garbage collector's reach (live objects only).

    The embedder's libraries (transformers, torch) leave ~560k tracked objects, and a full
    collection walked all of them (~350 ms) inside whichever chat happened to trigger it.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    services_factory: ServicesFactory = build_services,
    *,
    freeze: bool = False,  # servers: `freeze_heap` once started (tests build many apps)
) -> FastAPI:
    """The orchestrator app; `services_factory` lets tests supply their own clients."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = services_factory(settings)
        app.state.services = services
        app.state.rate_limiter = rate_limiter(settings, services.stores)
        app.state.jobs = JobManager(services.stores.state)
        await anyio.to_thread.run_sync(
            recover_interrupted_builds, services.stores, settings.qdrant.alias
        )
        swapper = AdapterSwapper(
            settings, services.registry, services.pool, services.chat.in_flight
        )
        app.state.swapper = swapper
        if freeze:
            freeze_heap()
        checker = asyncio.create_task(
            keep_adapters_loaded(swapper, settings.adapter.check_interval_s)
        )
        release_service, watcher = await start_releases(
            services, swapper, app.state.jobs, releases.candidate_answers
        )
        app.state.releases = release_service
        delivery = handoff_delivery(services)
        app.state.handoff_delivery = delivery
        sender = asyncio.create_task(delivery.run()) if delivery else None
        try:
            yield
        finally:
            for task in (checker, watcher, sender):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if delivery is not None:
                await delivery.aclose()
            await swapper.aclose()
            await services.pool.aclose()
            services.stores.close()

    app = FastAPI(title="Tandem", version=__version__, lifespan=lifespan)
    app.add_middleware(BodyLimitAndMetrics, max_bytes=settings.max_request_bytes)
    if settings.widget.origins:  # outermost, so preflights and error responses carry CORS
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.widget.origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    install_error_handlers(app)
    for module in (health, chat, openai, admin, adapters, releases, feedback, handoff, widget):
        app.include_router(module.router)
    return app
