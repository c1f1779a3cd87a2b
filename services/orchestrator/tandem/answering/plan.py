"""Stage 1 of a chat turn, plan: what to retrieve for, which adapter answers, within what limits.

Nothing here waits on a model or a store: a bad request, an unknown adapter slot or vLLM being
down is refused here, before anything is retrieved or generated. With release pairs in use
(`releases`, see `tandem.releases.pointer`), the pair is read here once per turn: its adapter
answers the pair's slot, and `Plan.pair.collection` is the collection to retrieve from.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from tandem.adapters.registry import AdapterRegistry, AdapterVersion
from tandem.answering.limits import check_conversation, check_top_k
from tandem.errors import NotFound
from tandem.rag.prompt import ChatMessage
from tandem.releases.pointer import PairSource, ServingPair
from tandem.settings import GenerationSettings, Settings

BASE_ADAPTER = "none"  # the adapter option that asks for the base model
SHORT_QUERY_WORDS = 6  # a user turn this short leans on the conversation for its topic
CONTEXT_TURNS = 2  # earlier user turns a follow-up may carry into its retrieval query
_FOLLOW_UP_START = re.compile(
    r"^(and|also|but|or|so|then|what about|how about|same for|what if)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class ChatOptions:
    """What a request may choose; the routes map their wire fields onto these."""

    adapter: str | None = None  # slot name, None for the default slot, "none" for the base
    retrieval: bool = True
    top_k: int | None = None
    conversation_id: str | None = None
    generation: GenerationSettings | None = None  # None: the configured defaults
    pair: ServingPair | None = None  # answer with this release pair (the admin candidate route)


@dataclass(frozen=True)
class Plan:
    """Everything decided about a turn before anything is retrieved."""

    id: str
    conversation: list[ChatMessage]  # as the customer sent it
    query: str | None  # what retrieval searches for; None: retrieval is off
    top_k: int
    adapter: AdapterVersion | None  # None: the base model
    model: str  # the served name vLLM knows
    generation: GenerationSettings
    started: float = field(default_factory=time.perf_counter)
    pair: ServingPair | None = None  # the release pair answering; None: no pair serves

    @property
    def adapter_label(self) -> str | None:
        return self.adapter.label if self.adapter else None

    @property
    def release(self) -> str | None:
        """The release pair's id, reported beside `index` and `adapter`."""
        return self.pair.release if self.pair else None


def is_follow_up(turn: str) -> bool:
    """A turn that needs the conversation for its topic ("and on the mobile app?")."""
    text = turn.strip()
    return len(text.split()) < SHORT_QUERY_WORDS or bool(_FOLLOW_UP_START.match(text))


def retrieval_query(conversation: Sequence[ChatMessage]) -> str:
    """The last user turn; a follow-up also carries the earlier turns back to its topic.

    Earlier turns are added nearest first, up to the last standalone question, and the last
    turn comes twice so the dense embedding leans toward it (BM25 counts each term once).
    """
    users = [m["content"].strip() for m in conversation if m["role"] == "user"]
    last = users[-1]
    if len(users) == 1 or not is_follow_up(last):
        return last
    context: list[str] = []
    for turn in reversed(users[:-1]):
        context.append(turn)
        if len(context) == CONTEXT_TURNS or not is_follow_up(turn):
            break
    return "\n".join([last, last, *context])


def sticky_key(conversation: Sequence[ChatMessage], conversation_id: str | None) -> str | None:
    """What keeps a conversation on one adapter version: its id, else its first user turn."""
    if conversation_id:
        return f"id:{conversation_id}"
    first = next((m["content"] for m in conversation if m["role"] == "user"), None)
    return f"first:{first}" if first else None


class Planner:
    def __init__(
        self, settings: Settings, registry: AdapterRegistry, releases: PairSource | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.releases = releases

    def plan(self, conversation: Sequence[ChatMessage], options: ChatOptions) -> Plan:
        started = time.perf_counter()
        conversation = check_conversation(conversation, self.settings)
        top_k = check_top_k(options.top_k, self.settings)
        sticky = sticky_key(conversation, options.conversation_id)
        pair = options.pair or (self.releases.serving(sticky) if self.releases else None)
        adapter = self.adapter(options.adapter, sticky, pair)
        return Plan(
            id=f"chat-{uuid.uuid4().hex[:16]}",
            conversation=conversation,
            query=retrieval_query(conversation) if options.retrieval else None,
            top_k=top_k,
            adapter=adapter,
            model=adapter.served_name if adapter else self.settings.model.name,
            generation=options.generation or self.settings.generation,
            started=started,
            pair=pair,
        )

    def adapter(
        self, name: str | None, sticky: str | None, pair: ServingPair | None = None
    ) -> AdapterVersion | None:
        """The adapter version serving this request (canary-aware), or None for the base.

        A release pair's adapter answers the pair's slot (and the default slot, when the pair
        answers with the base model); other slots route as they would without a pair.
        """
        if name == BASE_ADAPTER:
            return None
        slot = name or self.settings.default_slot
        if pair is not None and pair.adapter is None and name is None:
            return None
        if pair is not None and pair.slot == slot and pair.version is not None:
            return self.registry.get(slot, pair.version)
        if not self.registry.versions(slot):  # (not `slots()`: that lists every slot folder)
            raise NotFound(f"adapter slot {slot!r} does not exist (known: {self.registry.slots()})")
        return self.registry.route(slot, sticky)
