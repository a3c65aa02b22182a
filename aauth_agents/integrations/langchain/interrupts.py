"""The ``interrupt`` pending mode: the moment a person must act becomes a LangGraph interrupt.

A tool that needs the person (an interaction link, a clarification question) calls
``langgraph.types.interrupt()`` with::

    {"type": "aauth.interaction", "url", "code", "expires_in", "resource", "justification"}
    {"type": "aauth.clarification", "question", "options", "timeout"}

and the graph stops. It is resumed with ``Command(resume=...)``: ``{"done": True}`` (the
person finished at the link), ``{"answer": "..."}`` (to the question) or ``{"cancel": True}``
(withdraw the request, §Cancel Request). A resume of another shape is refused by LangGraph
before anything happens (``response_schema``; the interrupt stays open and can be answered
again).

A LangGraph node re-runs from its start when resumed. The tool therefore remembers, per
``(thread_id, checkpoint_ns, tool call id)``, the requests it left pending (their pending
URLs, :class:`~aauth_agents.agent.PendingRequests`) and the interrupts it raised: the re-run
first collects the answers of those interrupts again (the same ``interrupt()`` calls, in the
same order, are how LangGraph hands them back), then polls the pending request it already
made instead of asking the person a second time. The records live in this process
(:class:`InterruptRecords`, bounded); a graph resumed in another process starts the request
afresh.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...agent.callbacks import (
    CANCEL,
    Answer,
    Cancel,
    ClarificationRequest,
    InteractionRequest,
)
from ...agent.pending import PendingRequests
from ...protocol.errors import ConfigurationError

INTERACTION = "aauth.interaction"
CLARIFICATION = "aauth.clarification"


class InteractionResume(BaseModel):
    """How an ``aauth.interaction`` interrupt is resumed: ``{"done": True}`` or
    ``{"cancel": True}``."""

    model_config = ConfigDict(extra="forbid")
    done: Literal[True] | None = None
    cancel: Literal[True] | None = None

    @model_validator(mode="after")
    def _one(self) -> InteractionResume:
        if (self.done is None) == (self.cancel is None):
            raise ValueError('resume with {"done": true} or {"cancel": true}')
        return self


class ClarificationResume(BaseModel):
    """How an ``aauth.clarification`` interrupt is resumed: ``{"answer": "..."}`` or
    ``{"cancel": True}``."""

    model_config = ConfigDict(extra="forbid")
    answer: str | None = Field(default=None, min_length=1, max_length=16_384)
    cancel: Literal[True] | None = None

    @model_validator(mode="after")
    def _one(self) -> ClarificationResume:
        if (self.answer is None) == (self.cancel is None):
            raise ValueError('resume with {"answer": "..."} or {"cancel": true}')
        if self.answer is not None and not self.answer.strip():
            raise ValueError("the answer is empty")
        return self


RESUME_SCHEMAS: Mapping[str, type[BaseModel]] = {
    INTERACTION: InteractionResume,
    CLARIFICATION: ClarificationResume,
}


Moment = tuple[str, ...]


class NeedsPerson(Exception):
    """Raised inside the agent's flow when the person must act and the tool should
    interrupt the graph; carries the interrupt's payload and the moment it is about (an
    answer serves that moment only)."""

    def __init__(self, payload: dict[str, Any], moment: Moment) -> None:
        super().__init__(payload["type"])
        self.payload = payload
        self.moment = moment


def interaction_moment(request: InteractionRequest) -> Moment:
    return (INTERACTION, request.url, request.code)


def clarification_moment(request: ClarificationRequest) -> Moment:
    return (CLARIFICATION, request.pending_url, request.question)


@dataclass
class InterruptRecord:
    """One tool call's interrupted state: what it left pending, what it asked."""

    pending: PendingRequests = field(default_factory=PendingRequests)
    asked: list[tuple[dict[str, Any], Moment]] = field(default_factory=list)
    touched: float = field(default_factory=time.monotonic)


class InterruptRecords:
    """Interrupted tool calls by ``(thread_id, checkpoint_ns, tool call id)``: at most
    ``max_records``, each kept ``ttl`` seconds after its last use. Thread-safe."""

    def __init__(self, *, max_records: int = 1024, ttl: float = 24 * 3600.0) -> None:
        if max_records < 1 or ttl <= 0:
            raise ConfigurationError("max_records and ttl must be positive")
        self.max_records, self.ttl = max_records, ttl
        self._records: OrderedDict[Hashable, InterruptRecord] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, key: Hashable) -> InterruptRecord:
        """The record for ``key``, a new one if there is none (or it went stale)."""
        now = time.monotonic()
        with self._lock:
            record = self._records.pop(key, None)
            if record is None or now - record.touched > self.ttl:
                record = InterruptRecord()
            record.touched = now
            self._records[key] = record
            while len(self._records) > self.max_records:
                self._records.popitem(last=False)
            return record

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._records.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


Fresh = tuple[Moment, BaseModel]


class InterruptSurface:
    """The prompt surface of one run of an interrupted tool call: the answer the graph was
    resumed with serves the moment it was asked for (that interaction link, that question)
    and nothing else; any other moment raises :class:`NeedsPerson`."""

    def __init__(self, fresh: Fresh | None) -> None:
        self._fresh = fresh

    def _take(self, moment: Moment) -> BaseModel | None:
        if self._fresh is None or self._fresh[0] != moment:
            return None
        answer, self._fresh = self._fresh[1], None
        return answer

    def interaction(self, request: InteractionRequest) -> Cancel | None:
        moment = interaction_moment(request)
        answer = self._take(moment)
        if answer is None:
            raise NeedsPerson(interaction_payload(request), moment)
        assert isinstance(answer, InteractionResume)
        return CANCEL if answer.cancel else None

    def clarification(self, request: ClarificationRequest) -> Answer | Cancel:
        moment = clarification_moment(request)
        answer = self._take(moment)
        if answer is None:
            raise NeedsPerson(clarification_payload(request), moment)
        assert isinstance(answer, ClarificationResume)
        if answer.cancel or answer.answer is None:
            return CANCEL
        return Answer(answer.answer.strip())

    def event(self, event: Any) -> None:
        pass


def interaction_payload(request: InteractionRequest) -> dict[str, Any]:
    return {
        "type": INTERACTION,
        "url": request.url,
        "code": request.code,
        "expires_in": None if request.expires_in is None else int(request.expires_in),
        "resource": request.resource,
        "justification": request.justification,
    }


def clarification_payload(request: ClarificationRequest) -> dict[str, Any]:
    return {
        "type": CLARIFICATION,
        "question": request.question,
        "options": list(request.options) if request.options else None,
        "timeout": request.timeout,
    }


def interrupt_key(config: Mapping[str, Any], tool_call_id: str | None) -> tuple[str, str, str]:
    """``(thread_id, checkpoint_ns, tool call id)`` of a LangGraph tool call, or a typed
    error when the tool does not run in a graph with a checkpointer."""
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or tool_call_id is None:
        raise ConfigurationError(
            "on_pending='interrupt' needs a LangGraph run with a checkpointer and a "
            "thread_id, and a tool call (invoke the tool with a ToolCall, as ToolNode does)"
        )
    return str(thread_id), str(configurable.get("checkpoint_ns", "")), tool_call_id


def replay(record: InterruptRecord) -> Fresh | None:
    """Collect the answers of the interrupts ``record`` raised before (LangGraph returns
    them to the same calls, in order); the last is the fresh one this run serves."""
    from langgraph.types import interrupt

    fresh: Fresh | None = None
    for payload, moment in record.asked:
        fresh = moment, interrupt(payload, response_schema=RESUME_SCHEMAS[payload["type"]])
    return fresh


def ask(record: InterruptRecord, need: NeedsPerson) -> Fresh:
    """Stop the graph for ``need`` (``interrupt()`` raises ``GraphInterrupt``); it is
    remembered for the re-run. Returns only when LangGraph already holds an answer for this
    interrupt (the record of an earlier run was lost, say by a restart): that answer, for
    the caller to run again with."""
    from langgraph.types import interrupt

    record.asked.append((need.payload, need.moment))
    schema = RESUME_SCHEMAS[need.payload["type"]]
    return need.moment, interrupt(need.payload, response_schema=schema)


__all__ = [
    "CLARIFICATION",
    "INTERACTION",
    "ClarificationResume",
    "InteractionResume",
    "InterruptRecord",
    "InterruptRecords",
    "InterruptSurface",
    "NeedsPerson",
]
