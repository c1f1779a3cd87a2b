"""One chat turn, top to bottom, for every route: plan → ground → generate → check → outcome.

    plan      answering/plan.py      conversation → retrieval query, adapter version, limits
    ground    answering/ground.py    retrieve, decide the outcome (outcome.py), build the prompt
    generate  answering/generate.py  one async stream of deltas, then the usage
    check     answering/checks.py    sanitiser, citations, literals: one feed/flush shape
    outcome   answering/result.py    the graded answer (`TurnResult`)
    observe   answering/observers.py /metrics and the answer log, once per turn

`ChatService.start` runs plan and ground, so what fails there (bad input, an unknown adapter,
vLLM down, the store gone) fails before a response has begun and keeps its status code.
`Turn.stream` generates and checks, yielding `Delta`s and last the `TurnResult`; a whole
(JSON) answer is that same stream drained (`Turn.answer`), so the two cannot drift apart —
except that a whole answer loses the sentences carrying an unsupported literal, while a
streamed one, already on the customer's screen, has them flagged. Routes only translate the
turn into their wire format.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import anyio

from tandem.adapters.inflight import InFlight
from tandem.adapters.registry import AdapterRegistry
from tandem.answering.checks import Checks
from tandem.answering.generate import Generation, Generator, fallback
from tandem.answering.ground import Grounder, Grounds
from tandem.answering.house_format import is_fallback
from tandem.answering.literals import has_claims, remove_unsupported
from tandem.answering.observers import (
    AnswerLogObserver,
    MetricsObserver,
    TurnObserver,
    notify,
)
from tandem.answering.outcome import (
    ANSWERED,
    MODEL_FALLBACK,
    NO_CLAIMS_LEFT,
    SUGGESTED,
    OutcomeGate,
    QuestionReader,
)
from tandem.answering.plan import (
    BASE_ADAPTER,
    ChatOptions,
    Plan,
    Planner,
    is_follow_up,
    retrieval_query,
)
from tandem.answering.result import TurnResult, judge
from tandem.errors import BadInput, TimedOut
from tandem.llm.budget import TokenCounter, counter_for
from tandem.llm.client import Usage
from tandem.llm.pool import VllmPool
from tandem.rag.cross_encoder import PairScorer
from tandem.rag.prompt import ChatMessage
from tandem.rag.retriever import Retriever
from tandem.releases.pointer import PairSource
from tandem.settings import Settings
from tandem.stores.feedback import AnswerLog

__all__ = [
    "BASE_ADAPTER",
    "ChatOptions",
    "ChatService",
    "Delta",
    "Turn",
    "TurnResult",
    "is_follow_up",
    "retrieval_query",
]


@dataclass(frozen=True)
class Delta:
    """Text the customer may see now."""

    text: str


class ChatService:
    """Builds each stage once; `start` and `answer` run a turn through them."""

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        registry: AdapterRegistry,
        pool: VllmPool,
        counter: TokenCounter | None = None,
        answers: AnswerLog | None = None,
        cross_encoder: PairScorer | None = None,
        reader: QuestionReader | None = None,
        releases: PairSource | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.in_flight = InFlight()  # the adapter swapper waits on it before unloading
        self.planner = Planner(settings, registry, releases)  # docs + adapter, one pair
        gate = OutcomeGate(retriever, settings.answering, cross_encoder, reader)
        counter = counter or counter_for(settings.model_path)
        self.grounder = Grounder(settings, retriever, gate, counter)
        self.generator = Generator(pool, self.in_flight, settings.vllm.request_timeout_s)
        self.link_hosts = {h.lower() for h in settings.link_hosts}  # answers may link there
        self.observers: list[TurnObserver] = [MetricsObserver()]
        if answers is not None:  # every answer given is kept, for feedback on it
            self.observers.append(AnswerLogObserver(answers))

    async def start(
        self, conversation: Sequence[ChatMessage], options: ChatOptions, *, whole: bool = False
    ) -> Turn:
        """Plan and ground a turn, its generation already under way when it is `answered`.

        `whole`: the caller reads the answer whole (`Turn.answer`), so vLLM is asked for the
        complete text rather than a token stream.
        """
        self.pool.require_serving()  # vLLM down or full: 503 now, not after retrieval
        plan = self.planner.plan(conversation, options)
        generation: Generation | None = None
        try:
            found = await self.grounder.find(plan)
            if self.settings.answering.speculate:  # generate while the outcome is decided
                generation = self.generator.start(plan, found.messages, whole)
            grounds = await self.grounder.decide(plan, found)
        except BaseException as error:
            if generation is not None:
                await generation.cancel()
            if isinstance(error, Exception) and not isinstance(error, BadInput):
                failed = TurnResult(plan, None, streamed=not whole, error=error)
                failed.timings_ms = {"total": elapsed_ms(plan)}
                await notify(self.observers, failed)
            raise  # (BadInput: a refused request, too long for the context; not a failed turn)
        if grounds.abstained and generation is not None:
            await generation.cancel()
            generation = None
        elif not grounds.abstained and generation is None:
            generation = self.generator.start(plan, grounds.messages, whole)
        return Turn(self, plan, grounds, generation, elapsed_ms(plan))

    async def answer(self, conversation: Sequence[ChatMessage], options: ChatOptions) -> TurnResult:
        """A whole answer (JSON): the turn's stream drained."""
        turn = await self.start(conversation, options, whole=True)
        return await turn.answer()


class Turn:
    """A planned and grounded turn; `stream` (or `answer`) runs generation and the checks."""

    def __init__(
        self,
        service: ChatService,
        plan: Plan,
        grounds: Grounds,
        generation: Generation | None,
        ready_ms: float,
    ) -> None:
        self.service = service
        self.plan = plan
        self.grounds = grounds
        self.generation = generation  # None: not answered, the house sentence is streamed
        self.ready_ms = ready_ms  # plan and ground done, ms since the request reached chat

    @property
    def id(self) -> str:
        return self.plan.id

    async def stream(self) -> AsyncIterator[Delta | TurnResult]:
        """`Delta`s as the checks let them through, then the `TurnResult`."""
        async with aclosing(self._run(whole=False)) as items:
            async for item in items:
                yield item

    async def answer(self) -> TurnResult:
        """The whole answer, its unsupported sentences removed."""
        try:
            with anyio.fail_after(self.service.settings.vllm.request_timeout_s):
                async with aclosing(self._run(whole=True)) as items:
                    async for item in items:
                        if isinstance(item, TurnResult):
                            return item
        except TimeoutError as error:
            raise TimedOut("the answer took longer than the request deadline") from error
        raise AssertionError("a turn's stream always ends with its result")

    async def _run(self, whole: bool) -> AsyncGenerator[Delta | TurnResult, None]:
        service, plan, grounds = self.service, self.plan, self.grounds
        result = TurnResult(plan, grounds, streamed=not whole)
        marks = {"retrieval": self.ready_ms, "prepared": self.ready_ms}
        evidence = grounds.evidence(plan.conversation)
        checks = Checks(len(grounds.sources), service.link_hosts, evidence)
        generation_started = time.perf_counter()
        deadline = generation_started + service.settings.vllm.request_timeout_s
        sent: list[str] = []
        try:
            items = self.generation.items() if self.generation else fallback(grounds.fallback())
            async for item in items:
                if time.perf_counter() > deadline:
                    raise TimedOut("the answer took longer than the request deadline")
                if isinstance(item, Usage):
                    result.usage = item
                    continue
                marks.setdefault("model_first_token", elapsed_ms(plan))
                if text := checks.feed(item):
                    sent.append(text)
                    marks.setdefault("first_token", elapsed_ms(plan))
                    if not whole:
                        yield Delta(text)
            if text := checks.flush():
                sent.append(text)
                if not whole:
                    yield Delta(text)
        except BaseException as error:
            if isinstance(error, Exception):
                result.error = error
            else:  # the client went away (cancelled, or the stream closed early)
                result.cancelled = True
            result.text = "".join(sent)
            result.timings_ms = {**marks, **stage_ms(plan, generation_started)}
            await notify(service.observers, result)
            raise
        text = "".join(sent).strip()
        outcome, reason = grounds.outcome, grounds.abstained
        if outcome == ANSWERED and is_fallback(text):  # the model wrote the house sentence
            outcome, reason = SUGGESTED, MODEL_FALLBACK
        unsupported = checks.literals.unsupported if outcome == ANSWERED else []
        removal = service.settings.answering.remove_unsupported and grounds.index is not None
        if whole and unsupported and removal:
            text, _ = remove_unsupported(evidence, text)
            if not has_claims(text):
                outcome, reason = SUGGESTED, NO_CLAIMS_LEFT
                text = grounds.fallback()
        retrieval = grounds.index is not None
        pages = grounds.pages if retrieval else []
        result.text = text
        result.finish_reason = result.usage.finish_reason or "stop"
        result.grounding = judge(outcome, reason, checks.citations, unsupported, pages, retrieval)
        result.timings_ms = {**marks, **stage_ms(plan, generation_started)}
        await notify(service.observers, result)
        yield result


def elapsed_ms(plan: Plan) -> float:
    return round((time.perf_counter() - plan.started) * 1000, 1)


def stage_ms(plan: Plan, generation_started: float) -> dict[str, float]:
    now = time.perf_counter()
    return {
        "generation": round((now - generation_started) * 1000, 1),
        "total": round((now - plan.started) * 1000, 1),
    }
