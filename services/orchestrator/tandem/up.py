"""`tandem up`: model ready, vLLM started, corpus indexed if nothing is, API served."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import uvicorn
from rich.console import Console

from tandem.api.app import build_services, create_app
from tandem.api.deps import Services
from tandem.errors import TandemError
from tandem.indexing.reindex import index_release
from tandem.llm.launcher import VllmProcess
from tandem.llm.model_prep import prepare_base_model
from tandem.progress import progress_bar
from tandem.settings import Settings

console = Console(stderr=True)


def index_corpus_if_empty(services: Services, settings: Settings) -> None:
    """Index TANDEM_CORPUS when the alias serves nothing yet."""
    if services.store.alias_target(settings.qdrant.alias) is not None:
        info = services.retriever.index_info()
        console.print(f"index: serving release {info.release} ({info.collection})")
        return
    folder, release = settings.corpus_path, settings.corpus_release_name
    console.print(f"index: empty, indexing {folder} as release {release}")
    with progress_bar() as progress:
        report = index_release(
            services.store,
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


def run_up(settings: Settings) -> None:
    """Start everything, serve until Ctrl-C/SIGTERM, then stop what was started."""
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if settings.open_access:
        console.print(
            "[yellow]no TANDEM_API_KEYS / TANDEM_ADMIN_KEYS set: open access, "
            f"listening on {settings.host} only[/]"
        )
    vllm: VllmProcess | None = None
    if not settings.vllm.external:
        prepare_base_model(settings.model_path, settings.model.name)
        vllm = VllmProcess(settings, settings.data_dir / "logs" / "vllm.log")
        vllm.start()
        console.print(f"vllm: starting on {vllm.url}, log: {vllm.log_path}")
    try:
        services = build_services(settings)
        # leftovers of an interrupted build are removed by index_release before it builds,
        # and by the app's start-up otherwise
        index_corpus_if_empty(services, settings)
        if vllm is not None:
            seconds = vllm.wait_healthy(settings.vllm.startup_timeout_s)
            console.print(f"vllm: healthy after {seconds:.0f} s")
        app = create_app(settings, services_factory=lambda _: services)
        console.print(
            f"api: http://{settings.host}:{settings.port} "
            f"(ready in {time.monotonic() - started:.0f} s; Ctrl-C stops all); "
            f"support chat demo: http://{settings.host}:{settings.port}/widget/demo"
        )
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    except TandemError as error:
        console.print(f"[red]error:[/] {error}")
        raise SystemExit(2) from error
    finally:
        if vllm is not None:
            vllm.stop()
            console.print("vllm: stopped")
