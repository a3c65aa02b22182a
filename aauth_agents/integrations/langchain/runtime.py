"""What every AAuth LangChain tool shares: the agent of a run, the HTTP clients, the pending
modes, the flow's events as LangChain custom events, and AAuth failures as ``ToolException``.

* ``auth`` -- an :class:`~aauth_agents.agent.AAuth`, or a callable taking the
  ``RunnableConfig`` and returning the ``AAuth`` of the person the run acts for (one agent
  per person, §Agent-Person Binding), e.g. chosen by ``config["configurable"]["user_id"]``.
* ``http_client`` / ``async_http_client`` -- the ``httpx.Client`` / ``httpx.AsyncClient``
  requests go through (transport, timeouts, proxies, a development mapping of
  ``https://HOST`` to loopback); the tool sets ``auth`` per request. Without one, a client
  with :func:`~aauth_agents.agent.client_options` is made on first use (one per event loop
  for async calls).
* ``on_pending`` -- ``"wait"``: block (sync) or await (async) while the agent's prompt
  surface shows the person what to do; ``"interrupt"``: hand the moment to LangGraph
  (:mod:`.interrupts`).
* Every step of the agent's flow is dispatched as a custom callback event named
  ``aauth.<kind>`` (``aauth.challenge``, ``aauth.interaction``, ``aauth.token``,
  ``aauth.clarification``, ...; a pending request's end as ``aauth.approved``,
  ``aauth.denied``, ``aauth.expired``, ``aauth.cancelled``, ...), for chat UIs and tracing.
  Events never carry a token or a key.
* An AAuth failure becomes an :class:`AAuthToolError` (a ``ToolException``) whose message a
  model can read and act on ("The person declined access to files.write at ...") and carries
  no URL, code, token or key; the typed error rides on :attr:`AAuthToolArtifact.error` and in
  the log (``aauth_agents.integrations.langchain``). With a tool call id, the ``ToolMessage``
  has ``status="error"`` and the artifact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import httpx
from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import ToolException

from ...agent import AAuth, PendingRequests, client_options
from ...agent.events import FlowEvent, PendingEnded
from ...protocol.errors import AAuthError, ConfigurationError
from .interrupts import (
    InterruptRecords,
    InterruptSurface,
    NeedsPerson,
    ask,
    interrupt_key,
    replay,
)
from .tool import TOOL_CALL, AAuthTool

log = logging.getLogger("aauth_agents.integrations.langchain")

T = TypeVar("T")
PendingMode = Literal["wait", "interrupt"]
AuthSource = AAuth | Callable[[RunnableConfig], AAuth]
#: Response headers never put on an artifact (they carry credentials).
HIDDEN_HEADERS = frozenset({"aauth-access", "set-cookie", "authorization", "signature-key"})


# -- what a program reads --------------------------------------------------------------------


@dataclass(frozen=True)
class AAuthToolArtifact:
    """What a program needs of a tool call (the model reads only the content): the HTTP
    ``status`` and ``headers`` (credentials removed), the ``resource`` (its identifier),
    the ``url`` called, the parsed JSON ``data`` when the body was JSON, and the typed
    ``error`` when AAuth or the resource refused."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    resource: str | None = None
    url: str | None = None
    data: Any = None
    error: BaseException | None = None


class AAuthToolError(ToolException):
    """A tool call that AAuth ended (denied, expired, cancelled, revoked, unreachable...):
    ``args[0]`` is the message for the model, :attr:`error` the typed error and
    :attr:`artifact` what a program needs."""

    def __init__(self, message: str, *, error: BaseException, artifact: AAuthToolArtifact):
        super().__init__(message)
        self.error = error
        self.artifact = artifact


class HTTPToolError(ToolException):
    """The resource answered with an error status (not an AAuth refusal): the message gives
    the status and the start of the body; :attr:`artifact` the rest."""

    def __init__(self, message: str, *, artifact: AAuthToolArtifact):
        super().__init__(message)
        self.artifact = artifact


def handle_tool_error(error: ToolException) -> Any:
    """``handle_tool_error`` of the AAuth tools: the message for the model, as a
    ``ToolMessage`` with ``status="error"`` and the artifact when the call has an id."""
    message = error.args[0] if error.args else "the tool failed"
    artifact = getattr(error, "artifact", None)
    tool_call_id = TOOL_CALL.get()
    if artifact is None or tool_call_id is None:
        return message
    return ToolMessage(message, artifact=artifact, tool_call_id=tool_call_id, status="error")


# -- messages for a model ------------------------------------------------------------------


def _asked_for(error: AAuthError) -> str:
    """``access to files.write at resource.example``: the scopes and the resource's host
    (no URL: the model reads it)."""
    what = f"access to {', '.join(error.scopes)}" if error.scopes else "access"
    host = httpx.URL(error.resource).host if error.resource else ""
    return f"{what} at {host}" if host else what


def model_message(error: BaseException) -> str:
    """A sentence a model can act on, with no URL of a person's page, code, token or key."""
    if isinstance(error, httpx.HTTPError):
        try:
            host = error.request.url.host  # the party that could not be reached
        except RuntimeError:  # an error without its request
            host = ""
        where = f" reach {host}" if host else " complete the request"
        return (
            f"The agent could not{where} ({type(error).__name__}, a network error). Try "
            "again later."
        )
    if not isinstance(error, AAuthError):
        return "The request failed."
    asked = _asked_for(error)
    code = error.code
    messages = {
        "denied": f"The person declined {asked}.",
        "abandoned": f"The person left without deciding on {asked}. Ask again only if it "
        "is still needed.",
        "expired": f"The request for {asked} expired before the person decided. It may be "
        "asked again.",
        "cancelled": f"The request for {asked} was cancelled.",
        "user_unreachable": f"The person could not be reached to approve {asked}.",
        "revoked": f"The person has revoked the agent's {asked}.",
        "insufficient_scope": f"The authorization the agent holds does not cover this "
        f"request ({asked}).",
        "mission_terminated": "The mission this agent works under has ended; stop acting on it.",
        "invalid_code": f"The request for {asked} can no longer be completed.",
    }
    return messages.get(code, f"Authorization failed ({code}) for {asked}.")


def aauth_failure(
    error: BaseException, *, resource: str | None = None, url: str | None = None
) -> AAuthToolError:
    """``error`` (an AAuth failure, or a network error on the way) as the tool error."""
    if isinstance(error, AAuthError) and resource is not None:
        error.about(resource)
    log.info("tool call ended by %s: %r", type(error).__name__, error)
    artifact = AAuthToolArtifact(resource=resource, url=url, error=error)
    return AAuthToolError(model_message(error), error=error, artifact=artifact)


def visible_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HIDDEN_HEADERS}


# -- events ----------------------------------------------------------------------------------


def event_name(event: FlowEvent) -> str:
    if isinstance(event, PendingEnded):
        return f"aauth.{event.outcome}"
    return f"aauth.{event.kind}"


def event_data(event: FlowEvent) -> dict[str, Any]:
    return {"kind": event.kind, "description": event.describe(), **dataclasses.asdict(event)}


def _has_handlers(callbacks: Any) -> bool:
    return bool(getattr(callbacks, "handlers", None))


class _Events:
    """The flow's events as custom callback events of the tool run (``callbacks``: the run's
    child callback manager). Sync: dispatched at once, from whichever thread runs the flow.
    Async: scheduled on the tool's event loop (the flow may run on another, as the MCP tools'
    does) and awaited by :meth:`flush` before the tool returns."""

    def __init__(self, callbacks: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self.config: RunnableConfig = {"callbacks": callbacks}
        self.loop = loop
        self.tasks: list[asyncio.Task[None]] = []

    def emit(self, event: FlowEvent) -> None:
        name, data = event_name(event), event_data(event)
        if self.loop is None:
            dispatch_custom_event(name, data, config=self.config)
        else:
            self.loop.call_soon_threadsafe(self._schedule, name, data)

    def _schedule(self, name: str, data: dict[str, Any]) -> None:
        assert self.loop is not None
        self.tasks.append(
            self.loop.create_task(adispatch_custom_event(name, data, config=self.config))
        )

    async def flush(self) -> None:
        await asyncio.sleep(0)  # let callbacks scheduled from other threads run
        while self.tasks:
            tasks, self.tasks = self.tasks, []
            await asyncio.gather(*tasks, return_exceptions=True)


# -- clients ---------------------------------------------------------------------------------


class Clients:
    """The httpx clients a tool sends through: the caller's, or its own made on first use
    (one ``AsyncClient`` per event loop: a client's connections belong to one loop)."""

    def __init__(
        self, http_client: httpx.Client | None, async_http_client: httpx.AsyncClient | None
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ConfigurationError("http_client must be an httpx.Client")
        if async_http_client is not None and not isinstance(async_http_client, httpx.AsyncClient):
            raise ConfigurationError("async_http_client must be an httpx.AsyncClient")
        self._sync = http_client
        self._async = async_http_client
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def sync(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(**client_options())
        return self._sync

    def asynchronous(self) -> httpx.AsyncClient:
        if self._async is not None:
            return self._async
        loop = asyncio.get_running_loop()
        client = self._per_loop.get(loop)
        if client is None:
            client = self._per_loop[loop] = httpx.AsyncClient(**client_options())
        return client


# -- one tool call ---------------------------------------------------------------------------


def check_auth(auth: Any) -> AuthSource:
    if isinstance(auth, AAuth) or callable(auth):
        return cast(AuthSource, auth)
    raise ConfigurationError(
        "auth must be an AAuth, or a callable taking the RunnableConfig "
        "and returning the AAuth of the run's person"
    )


def check_pending_mode(on_pending: Any) -> PendingMode:
    if on_pending not in ("wait", "interrupt"):
        raise ConfigurationError(f"on_pending must be 'wait' or 'interrupt', not {on_pending!r}")
    if on_pending == "interrupt":
        try:
            from langgraph.types import interrupt  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                "on_pending='interrupt' needs langgraph: pip install 'aauth-agents[langgraph]'"
            ) from exc
    return cast(PendingMode, on_pending)


class ToolRuntime:
    """Runs the body of one tool call with the run's agent, in the tool's pending mode (see
    the module docstring). ``body(auth, client)`` makes the call with ``auth`` -- a view of
    the run's agent for this call (:meth:`~aauth_agents.agent.AAuth.derive`)."""

    def __init__(
        self,
        auth: Any,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        on_pending: Any = "wait",
        interrupts: InterruptRecords | None = None,
    ) -> None:
        self.auth_source = check_auth(auth)
        self.on_pending = check_pending_mode(on_pending)
        self.clients = Clients(http_client, async_http_client)
        self.interrupts = interrupts if interrupts is not None else InterruptRecords()

    def agent(self, config: RunnableConfig | None) -> AAuth:
        """The AAuth of the run (``auth``, or ``auth(config)``)."""
        source = self.auth_source
        auth = source if isinstance(source, AAuth) else source(config or {})
        if not isinstance(auth, AAuth):
            raise ConfigurationError(
                f"the auth callable must return an AAuth, not {type(auth).__name__}"
            )
        return auth

    def withdraw(self, auth: AAuth, pending: PendingRequests, client: httpx.Client) -> None:
        """Withdraw what a call left pending, through the client its requests used."""
        auth.withdraw(pending, client)

    async def awithdraw(
        self, auth: AAuth, pending: PendingRequests, client: httpx.AsyncClient
    ) -> None:
        await auth.awithdraw(pending, client)

    def _steps(
        self, auth: AAuth, config: RunnableConfig | None, events: _Events | None
    ) -> Generator[_Run | _Withdraw, Any, Any]:
        """The pending mode, once for both drivers: yields :class:`_Run` (make the call with
        this view of the agent; the call's result or error comes back) and
        :class:`_Withdraw`; returns the call's result."""
        on_event = events.emit if events is not None else None
        if self.on_pending == "wait":
            pending = PendingRequests()
            try:
                return (yield _Run(auth.derive(on_event=on_event, pending=pending)))
            except KeyboardInterrupt:  # the person stopped the program: withdraw
                yield _Withdraw(pending)
                raise
        key = interrupt_key(config or {}, TOOL_CALL.get())
        record = self.interrupts.open(key)
        fresh = replay(record)
        while True:
            if fresh is not None and getattr(fresh[1], "cancel", None):
                self.interrupts.drop(key)
                yield _Withdraw(record.pending)
                raise _cancelled(record.asked)
            view = auth.derive(
                prompts=InterruptSurface(fresh), on_event=on_event, pending=record.pending
            )
            try:
                result = yield _Run(view)
            except NeedsPerson as raised:
                need = raised
            except BaseException:
                self.interrupts.drop(key)
                raise
            else:
                self.interrupts.drop(key)
                return result
            fresh = ask(record, need)  # raises GraphInterrupt

    def call(
        self,
        config: RunnableConfig | None,
        callbacks: Any,
        body: Callable[[AAuth, httpx.Client], T],
    ) -> T:
        """Run ``body`` in the tool's pending mode (sync driver of :meth:`_steps`)."""
        auth = self.agent(config)
        client = self.clients.sync()
        events = _Events(callbacks, None) if _has_handlers(callbacks) else None
        steps = self._steps(auth, config, events)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(step, _Run):
                    value = body(step.auth, client)
                else:
                    self.withdraw(auth, step.pending, client)
            except BaseException as exc:  # handed to the steps, which decide
                error = exc

    async def acall(
        self,
        config: RunnableConfig | None,
        callbacks: Any,
        body: Callable[[AAuth, httpx.AsyncClient], Awaitable[T]],
    ) -> T:
        """:meth:`call` for async tools (async driver of :meth:`_steps`)."""
        auth = self.agent(config)
        client = self.clients.asynchronous()
        loop = asyncio.get_running_loop()
        events = _Events(callbacks, loop) if _has_handlers(callbacks) else None
        steps = self._steps(auth, config, events)
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = steps.send(value) if error is None else steps.throw(error)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                value, error = None, None
                try:
                    if isinstance(step, _Run):
                        value = await body(step.auth, client)
                    else:
                        await self.awithdraw(auth, step.pending, client)
                except BaseException as exc:
                    error = exc
        finally:
            if events is not None:
                await events.flush()


@dataclass(frozen=True)
class _Run:
    """Make the tool's call with ``auth`` (a view of the run's agent)."""

    auth: AAuth


@dataclass(frozen=True)
class _Withdraw:
    """Withdraw what ``pending`` holds (§Cancel Request)."""

    pending: PendingRequests


def _cancelled(asked: list[tuple[dict[str, Any], Any]]) -> AAuthToolError:
    """The tool error of a request the person cancelled from an interrupt."""
    from ...agent.errors import RequestCancelledError

    resource = next((p.get("resource") for p, _ in reversed(asked) if p.get("resource")), None)
    return aauth_failure(
        RequestCancelledError("the person cancelled the request"), resource=resource
    )


__all__ = [
    "AAuthTool",
    "AAuthToolArtifact",
    "AAuthToolError",
    "Clients",
    "HTTPToolError",
    "PendingMode",
    "ToolRuntime",
    "handle_tool_error",
    "model_message",
]
