"""``aauth-agents demo``: the whole AAuth ladder on loopback, with nothing configured.

Three real HTTP servers start on 127.0.0.1, each under its real identifier (only connections
are mapped, :mod:`aauth_agents.transport`; nothing signed or compared is rewritten):

* an agent provider, ``https://agent.example``
  (:class:`~aauth_agents.servers.agent_provider.AgentProviderServer`, SQLite in memory);
* a person server, ``https://ps.example`` (:func:`~aauth_agents.servers.person_server.
  create_person_server`, SQLite in memory, interactive consent) with one person, alice;
* the demo resource, ``https://resource.example``
  (:func:`~aauth_agents.servers.demo_resource.demo_resource`).

An agent enrols its key at the provider, then climbs the ladder with
:class:`~aauth_agents.agent.AAuth`: agent identity (``GET /whoami``), person identity
(``GET /profile``), three-party authorization with the person's consent (``GET /files``,
``files.read``), a sub-agent reading the files under that consent, its parent asking the PS
for it (§Parent-Mediated Authorization: ``subagent_token``), step-up (``POST /files``,
``files.write``) during which the person asks a clarifying question and the agent answers,
an MCP tool approved one call at a time (R3 per-call: ``delete_file``, the person reads
which file it deletes), a mission proposed to the PS, a permission and an audit record under
the mission, and finally the agent provider revokes the agent: the PS refuses its token and
tells the resource, which refuses the agent's auth token.

Each request is printed as it happens (which party, which header, a short decoded view of each
token), then a summary table. The person is scripted: a PS account that decides through the
PS's own interaction path (``ps.interactions.lookup`` with the interaction code, sign-in,
``approve`` / ``ask``), exactly what a consent page calls. With ``interactive=True`` the
person decides at the terminal instead. Exit status 0 when every step behaved as expected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, TextIO

import httpx

from .agent import AAuth, AgentIdentity, client_options
from .agent.events import FlowEvent, RequestSent, ResponseReceived
from .httpsig import parse_signature_key
from .network import LocalNetwork
from .servers import LoopbackServer
from .servers.agent_provider import (
    AgentProviderClient,
    AgentProviderConfig,
    AgentProviderServer,
)
from .servers.person_server import (
    InteractionView,
    PersonServer,
    PersonServerConfig,
    create_person_server,
    ui_routes,
)
from .servers.stack import OnItsLoop
from .tokens import peek

AGENT_PROVIDER = "https://agent.example"
PERSON_SERVER = "https://ps.example"
RESOURCE = "https://resource.example"
AGENT_ID = "aauth:assistant@agent.example"
PERSON = "alice"
PARTIES = {AGENT_PROVIDER: "agent provider", PERSON_SERVER: "person server", RESOURCE: "resource"}
#: Claims shown in a token's decoded view.
SHOWN_CLAIMS = ("iss", "sub", "aud", "ps", "scope", "parent_agent", "mission_s256", "exp")


@dataclass
class Step:
    name: str
    expected: str
    observed: str

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


def _short(value: str, keep: int = 40) -> str:
    return value if len(value) <= keep * 2 else f"{value[:keep]}...{value[-10:]}"


def _party(url: httpx.URL | str) -> str:
    parsed = httpx.URL(str(url))
    return PARTIES.get(f"{parsed.scheme}://{parsed.host}", str(parsed.host))


class Printer:
    """Prints each request and response (which party, which header) and a decoded view of
    each token the first time it is presented."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, file=self.out, flush=True)

    def token(self, label: str, token: str, indent: str = "      ") -> None:
        header, claims = peek(token)
        shown = {k: claims[k] for k in SHOWN_CLAIMS if k in claims}
        if "cnf" in claims:
            shown["cnf"] = "{jwk: " + str(claims["cnf"].get("jwk", {}).get("kty")) + " ...}"
        self.say(f"{indent}{label} {header.get('typ')}: {json.dumps(shown)}")

    def request(self, request: httpx.Request) -> None:
        self.say(f"  agent -> {_party(request.url)}   {request.method} {request.url}")
        value = request.headers.get("signature-key")
        if value is not None:
            try:
                _, key = parse_signature_key(value)
            except Exception:  # shown as is
                self.say(f"    Signature-Key: {_short(value)}")
                return
            self.say(f"    Signature-Key: {key.scheme} ({_short(value)})")
            jwt = key.jwt
            if jwt is not None:
                jti = str(peek(jwt)[1].get("jti"))
                if jti not in self.seen:
                    self.seen.add(jti)
                    self.token("presents", jwt)
        if "signature-input" in request.headers:
            self.say(f"    Signature-Input: {request.headers['signature-input']}")
        if b"subagent_token" in (request.content or b""):
            sub = json.loads(request.content)["subagent_token"]
            self.say(
                f"    body: subagent_token for {peek(sub)[1].get('sub')} (signed by its parent)"
            )

    def response(self, response: httpx.Response) -> None:
        self.say(f"  {_party(response.request.url)} -> agent   {response.status_code}")
        for name in ("AAuth-Requirement", "Signature-Error", "Location"):
            if name in response.headers:
                self.say(f"    {name}: {_short(response.headers[name], 60)}")

    def event(self, event: FlowEvent) -> None:
        if isinstance(event, (RequestSent, ResponseReceived)):
            return  # the hooks print those with their headers
        self.say(f"    * {event}")


class Person:
    """Alice, deciding at the PS through its interaction path: she opens the link (the code
    is looked up and consumed), signs in, reads the request and approves -- except that
    before letting the agent change her files she asks it one clarifying question and waits
    for its answer. ``interactive``: the person at the terminal decides instead."""

    def __init__(
        self,
        ps: PersonServer,
        site: OnItsLoop,
        password: str,
        printer: Printer,
        *,
        interactive: bool = False,
        stdin: IO[str] | None = None,
    ) -> None:
        self.ps, self.site, self.password, self.printer = ps, site, password, printer
        self.interactive = interactive
        self.stdin = stdin or sys.stdin
        self.seen: list[InteractionView] = []
        self.asked: list[str] = []
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        #: Where a browser reaches the PS's pages (its loopback origin).
        self.browser_origin: str | None = None

    def show(self, view: InteractionView) -> None:
        say = self.printer.say
        say(
            f"    person at the PS: reads the {view.kind.replace('_', ' ')} request"
            f"{' (a new agent)' if view.new_agent else ''}"
        )
        say(f"      agent {view.agent_id} from {view.provider_name or view.agent_issuer}")
        if view.resource is not None:
            say(f"      resource: {view.resource.name or view.resource.identifier}")
        for scope in view.scopes:
            say(f"      scope {scope.scope}: {scope.description or ''}")
        if view.justification:
            say(f"      justification: {view.justification}")
        if view.mission is not None:
            say(f"      mission: {view.mission.description}")
        if view.r3 is not None:
            say(f"      this call (R3 per-call proposal): {view.r3.summary}")
            for line in (view.r3.detail or "").splitlines():
                if line.strip():
                    say(f"        {line}")
            if view.r3.irreversible:
                say(f"      cannot be undone: {view.r3.irreversible}")
        for name, value in view.details.items():
            say(f"      {name}: {value}")

    def on_interaction(self, url: str, code: str) -> None:
        try:
            self._decide(url, code)
        except BaseException as exc:  # reported as a failed step by the walkthrough
            self.errors.append(exc)
            raise

    def _sign_in(self) -> str:
        account = self.site.call(self.ps.accounts.aauthenticate(PERSON, self.password))
        if account is None:
            raise RuntimeError("the person could not sign in")
        return account.username

    def _decide(self, url: str, code: str) -> None:
        say = self.printer.say
        link = f"{url}?code={code}"
        if self.interactive:
            say(f"    >>> the person's link: {link}")
            if self.browser_origin is not None:
                path = httpx.URL(url).raw_path.decode()
                say(f"        in a browser: {self.browser_origin}{path}?code={code}")
            if self._prompt("decide here [Enter], or in the browser [b]: ").startswith("b"):
                say("    person: decides in the browser")
                return
        view = self.site.call(self.ps.interactions.lookup(url.rsplit("/", 1)[1], code))
        self.seen.append(view)
        self.show(view)
        account = self._sign_in()
        self.site.call(self.ps.interactions.mark_interacting(view.id, account))
        if self.interactive:
            choice = self._prompt("approve [y], deny [n], or ask the agent a question [?]: ")
            if choice.startswith("?"):
                question = self._prompt("your question: ") or "Why do you need this?"
                self._ask(view, account, question)
            elif choice.startswith("n"):
                self.site.call(self.ps.interactions.deny(view.id, "the person said no"))
                say("    person: denies")
            else:
                self.site.call(self.ps.interactions.approve(view.id, account))
                say("    person: approves")
            return
        writes = any(scope.scope == "files.write" for scope in view.scopes)
        if writes and view.can_clarify and not self.asked:
            self._ask(view, account, "Why do you need to change my files?")
            return
        self.site.call(self.ps.interactions.approve(view.id, account))
        say(f"    person: approves as {account}")

    def _prompt(self, text: str) -> str:
        self.printer.say(f"    {text}")
        return self.stdin.readline().strip().lower()

    def _ask(self, view: InteractionView, account: str, question: str) -> None:
        self.asked.append(question)
        self.site.call(self.ps.interactions.ask(view.id, question))
        self.printer.say(f"    person: asks the agent {question!r} (a clarification round)")

        def wait_then_approve() -> None:
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    current = self.site.call(self.ps.interactions.get(view.id))
                    if (
                        current is not None
                        and current.clarifications
                        and current.clarifications[-1].answer is not None
                    ):
                        answer = current.clarifications[-1].answer
                        self.printer.say(f"    person: reads the answer {answer!r} and approves")
                        self.site.call(self.ps.interactions.approve(view.id, account))
                        return
                    time.sleep(0.05)
                raise TimeoutError("the agent never answered the question")
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=wait_then_approve, name="demo-person", daemon=True)
        self.threads.append(thread)
        thread.start()


class Walkthrough:
    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.steps: list[Step] = []

    def step(self, name: str, expected: str, run: Callable[[], str]) -> str:
        self.printer.say(f"\n== {len(self.steps) + 1}. {name}")
        try:
            observed = run()
        except Exception as exc:  # a failed step, shown in the table
            code = getattr(exc, "code", None)
            observed = f"error {code or type(exc).__name__}: {exc}"
            self.printer.say(f"    ! {observed}")
        self.steps.append(Step(name, expected, observed))
        return observed


def _status(response: httpx.Response, printer: Printer) -> str:
    if response.is_success:
        printer.say(f"    body: {_short(response.text, 100)}")
        return str(response.status_code)
    detail = ""
    try:
        detail = str(response.json().get("error", ""))
    except ValueError:
        pass
    return f"{response.status_code} {detail}".strip()


def run(
    out: TextIO = sys.stdout, *, interactive: bool = False, stdin: IO[str] | None = None
) -> int:
    """Run the walkthrough; returns the exit status (0 when every step behaved)."""
    # The mapped egress is said below; every other step is printed as it happens. The
    # loggers' levels are put back afterwards.
    names = (
        "aauth_agents.discovery",
        "aauth_agents.servers.demo_resource",
        "aauth_agents.resource",
        "aauth_agents.ps",
    )
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return _run(out, interactive, stdin)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _run(out: TextIO, interactive: bool, stdin: IO[str] | None) -> int:
    from .servers.demo_resource import demo_resource

    started = time.monotonic()
    printer = Printer(out)
    say = printer.say
    say("aauth-agents demo: the AAuth ladder on loopback (draft-hardt-oauth-aauth-protocol-11)")
    say(
        "development mapping: agent.example, ps.example and resource.example connect to "
        "127.0.0.1; discovery may fetch from loopback for these hosts only"
    )

    network = LocalNetwork(strict=True)  # the parties, added as they start
    ap = AgentProviderServer(
        AgentProviderConfig(issuer=AGENT_PROVIDER, ps=PERSON_SERVER, name="Demo assistant")
    )
    ps_discovery = network.discovery()
    ps = PersonServer(
        PersonServerConfig(
            issuer=PERSON_SERVER,
            discovery=ps_discovery,
            transport=network.async_transport(),
            name="Demo PS",
            password_log2_n=14,
        )
    )
    ps_app = create_person_server(ps, routes=ui_routes(ps))  # with the person's pages
    password = secrets.token_urlsafe(12)
    ps.accounts.create_account(PERSON, password, claims={"name": "Alice Example"})
    resource = demo_resource(RESOURCE, issuer_keys=network.discovery())
    ps_site = OnItsLoop(ps_app)
    walk = Walkthrough(printer)
    person = Person(ps, ps_site, password, printer, interactive=interactive, stdin=stdin)
    try:
        _on_loopback(walk, printer, person, ap, ps, ps_site, resource, network)
    finally:
        ap.close()
        ps.close()
    for thread in person.threads:
        thread.join(timeout=5)
    failed = _report(walk, printer, started)
    return 1 if failed or person.errors else 0


def _on_loopback(
    walk: Walkthrough,
    printer: Printer,
    person: Person,
    ap: AgentProviderServer,
    ps: PersonServer,
    ps_site: OnItsLoop,
    resource: Any,
    network: LocalNetwork,
) -> None:
    """Serve the three parties on loopback and walk the ladder against them."""
    say = printer.say
    with (
        LoopbackServer(ap.app()) as ap_server,
        LoopbackServer(ps_site) as ps_server,
        LoopbackServer(resource) as resource_server,
    ):
        network.add(AGENT_PROVIDER, ap_server.url)
        network.add(PERSON_SERVER, ps_server.url)
        network.add(RESOURCE, resource_server.url)
        ap.config.connect = {PERSON_SERVER: ps_server.url}
        say(f"\nagent provider {AGENT_PROVIDER} on {ap_server.url}")
        say(f"person server  {PERSON_SERVER} on {ps_server.url} (person: {PERSON})")
        person.browser_origin = ps_server.url
        if person.interactive:
            say(
                f"  the person signs in to the PS's pages as {PERSON} with password "
                f"{person.password}"
            )
        say(f"resource       {RESOURCE} on {resource_server.url}")
        mapping = network.transport()
        hooks: dict[str, list[Callable[..., Any]]] = {
            "request": [printer.request],
            "response": [printer.response],
        }
        with (
            httpx.Client(**client_options(transport=mapping, event_hooks=hooks)) as http,
            httpx.Client(transport=mapping, event_hooks=hooks, timeout=30) as ap_http,
        ):
            http.get(f"{PERSON_SERVER}/.well-known/aauth-person.json").raise_for_status()
            _Ladder(walk, printer, person, ap, ps, ps_site, http, ap_http).climb()


def _report(walk: Walkthrough, printer: Printer, started: float) -> list[Any]:
    """The table of steps; the steps that did not behave."""
    say = printer.say
    say("\nstep                                                  expected      observed")
    for number, step in enumerate(walk.steps, 1):
        mark = "ok  " if step.ok else "FAIL"
        say(f"{mark} {number:2}. {step.name:48} {step.expected:13} {_short(step.observed, 30)}")
    failed = [s for s in walk.steps if not s.ok]
    say(
        f"\n{len(walk.steps) - len(failed)} of {len(walk.steps)} steps as expected "
        f"in {time.monotonic() - started:.1f} s"
    )
    return failed


class _Ladder:
    """The steps; ``http`` is the agent's client (AAuth), ``ap_http`` reaches the provider.
    Each step is a method returning what it observed; :meth:`climb` walks them in order."""

    identity: AgentIdentity  # once enrolled
    auth: AAuth
    mission_s256: str  # once the mission is approved

    def __init__(
        self,
        walk: Walkthrough,
        printer: Printer,
        person: Person,
        ap: AgentProviderServer,
        ps: PersonServer,
        ps_site: OnItsLoop,
        http: httpx.Client,
        ap_http: httpx.Client,
    ) -> None:
        self.walk, self.printer, self.person = walk, printer, person
        self.ap, self.ps, self.ps_site = ap, ps, ps_site
        self.http, self.ap_http = http, ap_http
        self.say = printer.say
        self.answers: list[str] = []
        self.child: AgentIdentity | None = None

    def climb(self) -> None:
        step = self.walk.step
        if step("agent enrols its key at the agent provider", "enrolled", self.enrol) != "enrolled":
            return
        step("sub-agent token from the agent provider", "issued", self.subagent)
        self.auth = AAuth(
            self.identity,
            justification="Keep your notes tidy at the demo resource",
            on_interaction=self.person.on_interaction,
            on_clarification=self.on_clarification,
            on_event=self.printer.event,
            prefer_wait=1,
            max_poll_seconds=30,
        )
        self.http.auth = self.auth
        step("agent identity: GET /whoami", "200", lambda: self.get("/whoami"))
        step("person identity: GET /profile (consent)", "200", lambda: self.get("/profile"))
        step("three-party: GET /files (files.read)", "200", lambda: self.get("/files"))
        if self.child is not None:
            step("sub-agent via its parent: GET /files", "200", self.sub_agent_files)
        step("step-up: POST /files (files.write)", "201", self.write)
        step(
            "clarification: person asks, agent answers",
            "1 round",
            lambda: f"{min(len(self.person.asked), len(self.answers))} round",
        )
        step("per-call: MCP delete_file, this call approved", "200", self.per_call)
        self.governance = self.auth.governance(self.http)
        step("mission proposed and approved", "approved", self.mission)
        step("permission under the mission", "granted", self.permission)
        step("audit record in the mission log", "logged", self.audit)
        step("a request under the mission: GET /files", "200", lambda: self.get("/files"))
        step("revocation: the resource refuses the agent", "403 revoked", self.revoke)
        step("revocation: the provider issues no new token", "revoked", self.refresh)

    def get(self, path: str) -> str:
        return _status(self.http.get(RESOURCE + path), self.printer)

    def enrol(self) -> str:
        code = self.ap.create_enrollment(AGENT_ID)
        self.say(f"  operator -> agent     one-time enrolment code for {AGENT_ID}")
        identity = AgentProviderClient(AGENT_PROVIDER, self.ap_http).enroll(code)
        self.identity = identity
        self.printer.token("agent receives", identity.agent_token, indent="    ")
        return "enrolled" if identity.agent_id == AGENT_ID else identity.agent_id

    def subagent(self) -> str:
        child = AgentProviderClient(AGENT_PROVIDER, self.ap_http).subagent(self.identity, "search1")
        self.child = child
        self.printer.token("agent receives", child.agent_token, indent="    ")
        self.say("    (it acts through its parent at the PS, §Parent-Mediated Authorization)")
        return "issued" if child.parent_agent == AGENT_ID else str(child.parent_agent)

    def on_clarification(self, question: str, options: Any, timeout: Any) -> str:
        answer = "To save your shopping list as notes.txt; I change nothing else."
        self.answers.append(answer)
        self.say(f"    agent: answers {answer!r}")
        return answer

    def sub_agent_files(self) -> str:
        child = self.child
        assert child is not None
        self.say(
            f"    sub-agent {child.agent_id}: its own key and tokens; the parent asks the "
            "PS for it, under the parent's consent"
        )
        worker = AAuth(
            child, parent=self.auth, on_event=self.printer.event, prefer_wait=1, max_poll_seconds=30
        )
        return _status(self.http.get(RESOURCE + "/files", auth=worker), self.printer)

    def write(self) -> str:
        body = json.dumps({"name": "notes.txt", "content": "milk, eggs"}).encode()
        return _status(
            self.http.post(
                RESOURCE + "/files", content=body, headers={"content-type": "application/json"}
            ),
            self.printer,
        )

    def per_call(self) -> str:
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "delete_file", "arguments": {"name": "welcome.txt"}},
        }
        self.say("    MCP tools/call delete_file: held, with a proposal of this one call")
        response = self.http.post(
            RESOURCE + "/mcp",
            content=json.dumps(call).encode(),
            headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
            },
        )
        if not response.is_success:
            return _status(response, self.printer)
        for line in response.text.splitlines():  # one JSON-RPC answer, as an SSE event
            if line.startswith("data:"):
                result = json.loads(line[5:]).get("result", {})
                self.say(f"    tool result: {_short(str(result.get('structuredContent')), 100)}")
        return str(response.status_code)

    def mission(self) -> str:
        approval = self.governance.propose_mission(
            "Tidy up my notes at the demo resource",
            tools=["list_files", "write_file"],
            resources=[RESOURCE],
        )
        self.mission_s256 = approval.s256
        self.say(f"    mission approved: s256={approval.s256}")
        return "approved"

    def permission(self) -> str:
        result = self.governance.request_permission(
            "delete welcome.txt", description="The welcome file is no longer needed"
        )
        return result.permission

    def audit(self) -> str:
        self.governance.audit(
            "write_file",
            description="Wrote notes.txt",
            parameters={"name": "notes.txt"},
            result={"size": 10},
        )
        entries = self.ps_site.call(self.ps.mission_log(self.mission_s256))
        kinds = [entry.kind for entry in entries]
        self.say(f"    mission log at the PS: {', '.join(kinds)}")
        logged = "audit" in kinds and "permission_response" in kinds
        return "logged" if logged else ",".join(kinds)

    def revoke(self) -> str:
        result = asyncio.run(self.ap.revoke_agent(AGENT_ID))
        unacknowledged = 0
        for call in result.calls:
            self.say(
                f"  agent provider -> person server   POST {PERSON_SERVER}/revoke "
                f"{{iss, jti: {call.jti}}} signed with Signature-Key: jwks_uri"
            )
            self.say(
                f"  person server -> agent provider   {call.status or call.error} "
                f"{json.dumps(call.answer) if call.answer else ''}"
            )
            if call.answer:
                unacknowledged += int(call.answer.get("revoked_auth_tokens", 0)) - int(
                    call.answer.get("notified", 0)
                )
        if unacknowledged > 0:  # a resource refused a notification: the PS tries again
            self._retry_notifications(unacknowledged)
        refused = self.http.get(RESOURCE + "/files")
        return _status(refused, self.printer)

    def _retry_notifications(self, unacknowledged: int) -> None:
        self.say(
            f"    person server: {unacknowledged} resource notification(s) not "
            "acknowledged; retrying"
        )
        second = int(time.time())
        while int(time.time()) == second:
            time.sleep(0.05)
        report = self.ps_site.call(self.ps.retry_revocations())
        self.say(
            f"    person server: retried, {len(report.notified)} acknowledged, "
            f"{len(report.failed)} failed"
        )

    def refresh(self) -> str:
        try:
            AgentProviderClient(AGENT_PROVIDER, self.ap_http).refresh(
                self.identity.key, self.identity.agent_token
            )
        except Exception as exc:
            return str(getattr(exc, "code", exc))
        return "refreshed"


__all__ = ["Person", "run"]
