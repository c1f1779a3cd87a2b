"""`tandem up`: model ready, vLLM started, corpus indexed if nothing is, API served."""

from __future__ import annotations

import logging
import secrets
import signal
import time
from types import FrameType

import uvicorn
from rich.console import Console
from starlette.types import ASGIApp

from tandem.api.app import build_services, create_app
from tandem.api.deps import Services
from tandem.cli.progress import progress_bar
from tandem.errors import TandemError
from tandem.indexing.reindex import index_release
from tandem.llm.launcher import VllmProcess
from tandem.llm.model_prep import prepare_base_model
from tandem.llm.supervisor import VllmSupervisor
from tandem.rag.cross_encoder_prep import cross_encoder_path, prepare_cross_encoder
from tandem.rag.embedder import describe
from tandem.settings import Settings

console = Console(stderr=True)


def index_corpus_if_empty(services: Services, settings: Settings) -> None:
    """Index TANDEM_CORPUS when the pointer serves nothing yet."""
    if services.stores.docs.pointer_target(settings.qdrant.alias) is not None:
        info = services.retriever.index_info()
        console.print(f"index: serving release {info.release} ({info.collection})")
        return
    folder, release = settings.corpus_path, settings.corpus_release_name
    console.print(f"index: empty, indexing {folder} as release {release}")
    with progress_bar() as progress:
        report = index_release(
            services.stores,
            services.embedder,
            folder,
            release,
            settings.qdrant.alias,
            progress,
            keep=settings.qdrant.keep_releases,
        )
    console.print(
        f"index: {report.chunks} chunks from {report.pages} pages in "
        f"{report.seconds['total']:.1f} s"
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops vLLM


def with_vllm_key(settings: Settings) -> Settings:
    """A fresh key between Tandem and the vLLM it starts, unless one is configured.

    vLLM then refuses its /v1 routes (runtime LoRA loading included) to anyone else.
    """
    if settings.vllm.external or settings.vllm.api_key:
        return settings
    vllm = settings.vllm.model_copy(update={"api_key": secrets.token_urlsafe(32)})
    return settings.model_copy(update={"vllm": vllm})


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """SIGTERM/Ctrl-C: stop accepting, let streams in flight finish for `drain_s`, then stop."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.drain_s),
    )


def run_up(settings: Settings) -> None:
    """Start everything, serve until Ctrl-C/SIGTERM, then stop what was started."""
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if settings.open_access:
        console.print(
            "[yellow]no TANDEM_API_KEYS / TANDEM_ADMIN_KEYS set: open access, "
            f"listening on {settings.host} only[/]"
        )
    settings = with_vllm_key(settings)
    answering = settings.answering
    if answering.cross_encoder:  # the cross-encoder the outcome decision reads (once)
        prepare_cross_encoder(
            answering.cross_encoder_dir or cross_encoder_path(settings.models_dir)
        )
    supervisor: VllmSupervisor | None = None
    if not settings.vllm.external:
        prepare_base_model(settings.model_path, settings.model.name)
        vllm = VllmProcess(settings, settings.data_dir / "logs" / "vllm.log")
        supervisor = VllmSupervisor(
            vllm, settings.vllm.startup_timeout_s, max_restarts=settings.vllm.max_restarts
        )
        supervisor.start()  # it loads while the corpus is indexed
        console.print(f"vllm: starting on {vllm.url}, log: {vllm.log_path}")
    try:
        services = build_services(settings)
        console.print(f"embedder: {describe(services.embedder)}")
        # leftovers of an interrupted build are removed by index_release before it builds,
        # and by the app's start-up otherwise
        index_corpus_if_empty(services, settings)
        if supervisor is not None:
            seconds = supervisor.watch()
            services.vllm_report = supervisor.report
            console.print(f"vllm: healthy after {seconds:.0f} s (supervised)")
        app = create_app(settings, services_factory=lambda _: services, freeze=True)
        console.print(
            f"api: http://{settings.host}:{settings.port} "
            f"(ready in {time.monotonic() - started:.0f} s; Ctrl-C stops all); "
            f"support chat demo: http://{settings.host}:{settings.port}/widget/demo"
        )
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        uvicorn.Server(server_config(app, settings)).run()
    except TandemError as error:
        console.print(f"[red]error:[/] {error}")
        raise SystemExit(2) from error
    finally:
        if supervisor is not None:
            supervisor.stop()
            console.print("vllm: stopped (whole process group)")
