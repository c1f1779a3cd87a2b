"""Typed dependencies that routes declare (tests swap them with `dependency_overrides`)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from tandem.adapters.registry import AdapterRegistry
from tandem.answering.turn import ChatService
from tandem.api.rate_limit import Limiter
from tandem.api.rate_limit import RateLimiter as RateLimiter  # where tests and callers found it
from tandem.errors import Forbidden, Unauthorized
from tandem.indexing.embed_process import EmbedderFactory
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import Embedder
from tandem.rag.retriever import Retriever
from tandem.settings import Settings
from tandem.stores.deployment import Stores
from tandem.stores.feedback import FeedbackLog
from tandem.stores.handoffs import HandoffStore


@dataclass
class Services:
    """Every client the app opens in its lifespan and closes on shutdown."""

    settings: Settings
    stores: Stores
    embedder: Embedder
    retriever: Retriever
    registry: AdapterRegistry
    pool: VllmPool
    chat: ChatService
    vllm_report: Callable[[], dict[str, Any]] | None = None  # the supervisor's, under `up`
    feedback: FeedbackLog | None = None  # the answer log behind POST /v1/feedback
    handoffs: HandoffStore | None = None  # handoffs to a person, waiting for the help desk
    # builds the admin index jobs' embedder in a child process; None: they use `embedder`
    index_embedder: EmbedderFactory | None = None


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key")


def key_in(key: str, keys: list[str]) -> bool:
    """Constant-time membership: every configured key is compared, each in constant time."""
    found = False
    for known in keys:
        found |= hmac.compare_digest(key.encode(), known.encode())
    return found


async def require_chat_key(request: Request, services: ServicesDep) -> str:
    """Chat routes: a chat key or an admin key."""
    settings = services.settings
    key = _bearer(request)
    if not settings.open_access:
        if key is None:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        if not key_in(key, [*settings.api_keys, *settings.admin_keys]):
            raise Unauthorized("unknown API key")
    limiter: Limiter = request.app.state.rate_limiter
    client = request.client.host if request.client else "anonymous"
    await limiter.admit(key or client)
    return key or "open"


async def require_admin_key(request: Request, services: ServicesDep) -> str:
    """Admin routes: an admin key; a chat key gets 403."""
    settings = services.settings
    key = _bearer(request)
    if settings.open_access:
        return "open"
    if key is None:
        raise Unauthorized("missing admin key: send 'Authorization: Bearer <key>'")
    if key_in(key, settings.api_keys):
        raise Forbidden("this is a chat key; admin routes need an admin key")
    if not key_in(key, settings.admin_keys):
        raise Unauthorized("unknown API key")
    return key


ChatKey = Annotated[str, Depends(require_chat_key)]
AdminKey = Annotated[str, Depends(require_admin_key)]
