"""The development stack ``aauth-agents dev`` runs: every party on loopback, one network.

:class:`DevStack` is a :class:`~aauth_agents.servers.stack.LocalStack` set up for a person
building their own agent and resource:

* the agent is the self-hosted one ``aauth-agents keys init`` writes into a directory (made
  there when missing, with the development PS as its PS); its agent provider (metadata and
  JWKS at its issuer) is served, so resources verify the agent tokens it mints itself;
* the person server ``https://ps.example`` asks the person (interactive consent) and binds
  every new agent to the one local account (``default_person``), so the agent's requests
  are listed on that person's dashboard;
* the demo resource ``https://resource.example`` and the person's own ASGI apps, a plain
  Starlette or FastAPI app with :func:`~aauth_agents.resource.policy.requires` rules being
  put behind :class:`~aauth_agents.resource.AAuthMiddleware` (:func:`protect`).

Ports are stable (a base, 8700 by default: the PS, then the agent provider, the demo
resource and the apps in order), and the network is written to ``network.json`` in the
directory, so the environment printed by :meth:`DevStack.snippet` stays valid across
restarts; parties added to that file later (``aauth-agents dev --add``) are reached by the
running PS without a restart.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from ..agent.provider import AgentNotFoundError, LocalAgent, init_local_agent, load_local_agent
from ..agent.storage import DirectoryKeyStore
from ..keys import PrivateKey
from ..network import ENV_NETWORK, LocalNetwork
from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import validate_server_identifier
from ..protocol.scopes import is_identity_scope
from ..resource import AAuthMiddleware, ResourceConfig
from ..resource.policy import RULE_ATTRIBUTE, AccessRule
from ..tokens import IssuerKeys
from .stack import PERSON_SERVER, RESOURCE, LocalStack

#: The first port: the PS; the agent provider, the demo resource and the apps follow.
BASE_PORT = 8700
#: The network file, in the stack's directory.
NETWORK_FILE = "network.json"
#: The agent ``dev`` creates when its directory has none.
DEV_AGENT_ID = "aauth:me@agent.example"
#: The person's account at the development PS.
DEV_PERSON = "person"


def _rules(routes: Iterable[Any], depth: int = 0) -> list[AccessRule]:
    """Every :func:`~aauth_agents.resource.policy.requires` rule of a Starlette / FastAPI
    route tree."""
    found: list[AccessRule] = []
    for route in routes:
        rule = getattr(getattr(route, "endpoint", None), RULE_ATTRIBUTE, None)
        if isinstance(rule, AccessRule):
            found.append(rule)
        inner = getattr(route, "routes", None)
        if inner and depth < 8:
            found.extend(_rules(inner, depth + 1))
    return found


def protect(app: Any, identifier: str, issuer_keys: IssuerKeys) -> Any:
    """``app`` as the resource ``identifier``: an :class:`AAuthMiddleware` (or an app that
    already has one) as it is; otherwise behind one with a fresh signing key, the given
    issuer keys and every scope its ``@requires`` rules name (each described by its name).
    Routes without a rule need an agent token (the middleware's default)."""
    if isinstance(app, AAuthMiddleware) or any(
        getattr(m, "cls", None) is AAuthMiddleware for m in getattr(app, "user_middleware", ())
    ):
        return app
    rules = _rules(getattr(app, "routes", ()))
    scopes = sorted({s for r in rules for s in r.scopes if not is_identity_scope(s)})
    config = ResourceConfig(
        identifier=identifier,
        signing_key=PrivateKey.generate(kid="dev-1"),
        issuer_keys=issuer_keys,
        scope_descriptions={scope: scope for scope in scopes},
        name=httpx.URL(identifier).host,
    )
    if hasattr(app, "add_middleware"):  # Starlette / FastAPI: routes see scope["app"]
        app.add_middleware(AAuthMiddleware, resource=config)
        return app
    return AAuthMiddleware(app, resource=config)


def parse_app_option(value: str) -> tuple[str, str]:
    """``[https://ID=]module:attr`` -> ``(identifier, "module:attr")``; the identifier
    defaults to ``https://<module>.example`` (its last dotted part)."""
    identifier, sep, spec = value.rpartition("=")
    module, colon, attr = spec.partition(":")
    if not colon or not module or not attr:
        raise ValueError(f"expected [https://ID=]module:attr, got {value!r}")
    if not sep:
        identifier = f"https://{module.rsplit('.', 1)[-1].replace('_', '-').lower()}.example"
    return validate_server_identifier(identifier), spec


def import_app(spec: str, directory: Path | None = None) -> Any:
    """The object ``module:attr`` names, importing ``module`` with ``directory`` (default:
    the current one) first on the path, as uvicorn does."""
    module_name, _, attr = spec.partition(":")
    where = str((directory or Path.cwd()).resolve())
    if where not in sys.path:
        sys.path.insert(0, where)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {spec}: {exc}") from exc
    return target


def local_agent(directory: Path) -> tuple[LocalAgent, bool]:
    """The ``keys init`` agent in ``directory``, created (as :data:`DEV_AGENT_ID`, with the
    development PS) when there is none; ``True`` when it was created."""
    store = DirectoryKeyStore(directory)
    try:
        return load_local_agent(store), False
    except AgentNotFoundError:
        init_local_agent(store, DEV_AGENT_ID, ps=PERSON_SERVER, name="My agent")
        return load_local_agent(store), True


class DevStack:
    """The development stack (see the module docstring) for the agent in ``directory``.
    ``apps`` -- ``(identifier, ASGI app)`` pairs; ``port`` -- the base port (0: any);
    ``demo`` -- serve the demo resource; ``password`` -- the person's (random when not
    given)."""

    def __init__(
        self,
        directory: Path,
        *,
        apps: Sequence[tuple[str, Any]] = (),
        port: int = BASE_PORT,
        demo: bool = True,
        password: str | None = None,
    ) -> None:
        self.directory = directory.expanduser().resolve()
        self.apps = list(apps)
        self.port = port
        self.demo = demo
        self.password = password
        self.created = False
        self.stack: LocalStack | None = None

    @property
    def network_file(self) -> Path:
        return self.directory / NETWORK_FILE

    def start(self) -> DevStack:
        self.agent, self.created = local_agent(self.directory)
        issuer = self.agent.provider.issuer
        if issuer in (PERSON_SERVER, RESOURCE) or issuer in dict(self.apps):
            raise ConfigurationError(f"the agent's provider {issuer} is another party's name")
        self.network_file.unlink(missing_ok=True)  # this run's parties only
        network = LocalNetwork(file=self.network_file)
        stack = LocalStack(
            person=DEV_PERSON,
            password=self.password,
            person_name="The person",
            network=network,
            port=self.port,
            enrolment=False,
            demo=self.demo,
            default_person=DEV_PERSON,
            name="Development person server",
        )
        self.stack = stack
        try:
            stack.start()
            stack.add(issuer, self.agent.provider.app(), port=self.port and self.port + 1)
            for index, (identifier, app) in enumerate(self.apps):
                self.add(identifier, app, port=self.port and self.port + 3 + index)
        except BaseException:
            stack.close()
            raise
        return self

    def add(self, identifier: str, app: Any, *, port: int = 0) -> str:
        """Serve ``app`` (:func:`protect`-ed) as ``identifier``; returns its origin."""
        assert self.stack is not None
        protected = protect(app, identifier, self.stack.discovery())
        return self.stack.add(identifier, protected, port=port)

    def close(self) -> None:
        if self.stack is not None:
            self.stack.close()
            self.stack = None

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snippet(self, *, show_password: bool = True) -> str:
        """What to paste into a shell, and how the person signs in."""
        assert self.stack is not None
        stack = self.stack
        dashboard = stack.browser_url(f"{PERSON_SERVER}/dashboard")
        password = stack.password if show_password else "(from $AAUTH_AGENTS_PASSWORD)"
        target = f"{RESOURCE}/files" if self.demo else (self.apps[0][0] + "/" if self.apps else "")
        lines = [
            f"export AAUTH_AGENTS_DIR={self.directory}",
            f"export {ENV_NETWORK}={self.network_file}",
            "",
            f"The person signs in at {dashboard}",
            f"  account: {stack.person}   password: {password}",
            "",
            f"agent          {self.agent.agent_id} (provider {self.agent.provider.issuer})",
        ]
        lines += [f"party          {k} on {v}" for k, v in stack.mapping.items()]
        if target:
            lines += ["", f"Try:  aauth-agents fetch {target}"]
        return "\n".join(lines)


__all__ = [
    "BASE_PORT",
    "DEV_AGENT_ID",
    "DEV_PERSON",
    "NETWORK_FILE",
    "DevStack",
    "import_app",
    "local_agent",
    "parse_app_option",
    "protect",
]
