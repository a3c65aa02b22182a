"""What each route requires: access rules, route policies and the MCP tool policy.

An :class:`AccessRule` names a rung of the access ladder (§Resource Access Modes):

========== ================================================ ======================================
level      satisfied by                                      otherwise
========== ================================================ ======================================
public     anything (the middleware does not verify)         --
agent      any verified agent, person or auth token          401 ``requirement=agent-token``
person     a person token, an auth token or a session        401 ``requirement=person-token``
auth       an auth token granting ``scopes``                 401 ``person-token`` / ``auth-token``
session    a resource-managed session (``AAuth-Access``)     202 ``requirement=interaction``
per-call   an auth token approving *this one call*           202 ``requirement=auth-token``
========== ================================================ ======================================

"A credential satisfying a later one satisfies an earlier one" (R3 §Access Mode Annotation):
an auth token passes ``agent`` and ``person`` routes. ``approval=True`` holds every invocation
for a third party's approval (202 ``requirement=approval``); ``deferred=True`` delivers the
auth-token challenge as a 202 that holds the invocation (§Deferred Delivery); ``step_up=False``
refuses an auth token lacking scopes with 403 ``insufficient_scope`` instead of challenging
for a new one.

``per-call`` (R3 §Per-Call Proposals; an MCP tool call): "not a fourth rung on that ladder"
(R3 §Access Mode Annotation) -- no credential held in advance suffices. Each call is held
(202) with a proposal built from its arguments; ``display`` says what the call will do
(see :mod:`aauth_agents.resource.percall`). It is the strictest rule when a batch combines
rules.

A :class:`RoutePolicy` maps ``(method, path pattern)`` to a rule (first match wins) with a
default; an endpoint decorated with :func:`requires` overrides it. Patterns are literal paths
with ``{name}`` (one segment), ``{name:path}`` (the rest, slashes included) and a final ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ..httpsig import HttpRequest
from ..protocol.encoding import loads_json
from ..protocol.errors import ConfigurationError
from ..protocol.scopes import is_scope_token

if TYPE_CHECKING:
    from .percall import DisplaySource

PUBLIC = "public"
AGENT = "agent"
PERSON = "person"
AUTH = "auth"
SESSION = "session"
PER_CALL = "per-call"
LEVELS: Mapping[str, int] = {PUBLIC: 0, AGENT: 1, PERSON: 2, SESSION: 3, AUTH: 4, PER_CALL: 5}

#: The ``access_mode`` value (§Resource Metadata, R3 §Resource Metadata Extensions) each
#: level corresponds to.
ACCESS_MODES: Mapping[str, str] = {
    AGENT: "agent-token",
    PERSON: "person-token",
    AUTH: "auth-token",
    SESSION: "session-token",
    PER_CALL: "per-call",
}


@dataclass(frozen=True)
class AccessRule:
    """A route's requirement. Build with the constructors: ``AccessRule.auth("data.read")``."""

    level: str
    scopes: tuple[str, ...] = ()
    approval: bool = False
    deferred: bool = False
    step_up: bool = True
    #: per-call only: what the call will do, for the person (:mod:`.percall`).
    display: DisplaySource | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigurationError(f"unknown access level {self.level!r}")
        if not all(is_scope_token(s) for s in self.scopes):
            raise ConfigurationError(f"not scope tokens: {self.scopes!r}")
        if self.level == AUTH and not self.scopes:
            raise ConfigurationError("an auth rule names the scopes its resource token requests")
        if self.scopes and self.level not in (AUTH, SESSION, PER_CALL):
            raise ConfigurationError("only auth, session and per-call rules carry scopes")
        if self.deferred and self.level != AUTH:
            raise ConfigurationError("deferred delivery is for auth-token rules")
        if self.approval and self.level in (PUBLIC, PER_CALL):
            raise ConfigurationError("a public or per-call rule takes no approval")
        if self.display is not None and self.level != PER_CALL:
            raise ConfigurationError("display is for per-call rules")

    @classmethod
    def public(cls) -> AccessRule:
        return cls(PUBLIC)

    @classmethod
    def agent(cls, *, approval: bool = False) -> AccessRule:
        return cls(AGENT, approval=approval)

    @classmethod
    def person(cls, *, approval: bool = False) -> AccessRule:
        return cls(PERSON, approval=approval)

    @classmethod
    def auth(
        cls, *scopes: str, deferred: bool = False, step_up: bool = True, approval: bool = False
    ) -> AccessRule:
        return cls(
            AUTH,
            tuple(dict.fromkeys(scopes)),
            approval=approval,
            deferred=deferred,
            step_up=step_up,
        )

    @classmethod
    def session(cls, *scopes: str, approval: bool = False) -> AccessRule:
        return cls(SESSION, tuple(dict.fromkeys(scopes)), approval=approval)

    @classmethod
    def per_call(cls, *scopes: str, display: DisplaySource | None = None) -> AccessRule:
        """Each call approved on its own (R3 §Per-Call Proposals), for MCP tools. ``scopes``
        go in the resource token beside the proposal (described scopes, §Scopes);
        ``display`` is a :class:`~aauth_agents.protocol.r3.Display` or a function of the
        :class:`~aauth_agents.resource.percall.ProposedCall` returning one (default: the
        tool and its arguments)."""
        return cls(PER_CALL, tuple(dict.fromkeys(scopes)), display=display)

    @property
    def access_mode(self) -> str | None:
        """The ``access_mode`` value of this rule (``None`` for public)."""
        return ACCESS_MODES.get(self.level)

    def combine(self, other: AccessRule) -> AccessRule:
        """The stricter of two rules, scopes united (for a batch naming several tools)."""
        level = max(self.level, other.level, key=LEVELS.__getitem__)
        scopes = (
            tuple(dict.fromkeys((*self.scopes, *other.scopes)))
            if level in (AUTH, SESSION, PER_CALL)
            else ()
        )
        return AccessRule(
            level,
            scopes,
            approval=level != PER_CALL and (self.approval or other.approval),
            deferred=level == AUTH and (self.deferred or other.deferred),
            step_up=self.step_up and other.step_up,
            display=self.display or other.display if level == PER_CALL else None,
        )


#: A rule, or a function choosing one from the buffered request (e.g. per MCP tool).
RuleSource: TypeAlias = AccessRule | Callable[[HttpRequest], AccessRule]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()+,;=:@%]*")


def compile_path(pattern: str) -> re.Pattern[str]:
    """The regular expression a path pattern stands for; :class:`ConfigurationError` when
    ``pattern`` is not one (must start with ``/``; ``{name}`` / ``{name:path}`` whole
    segments; ``*`` only as the last segment)."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ConfigurationError(f"a path pattern starts with '/': {pattern!r}")
    segments = pattern[1:].split("/")
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "*":
            if not last:
                raise ConfigurationError(f"'*' must be the last segment: {pattern!r}")
            out.append(".*")
            continue
        match = _PARAM.fullmatch(segment)
        if match:
            if match.group(2) and not last:
                raise ConfigurationError(f"{{name:path}} must be the last segment: {pattern!r}")
            out.append(".*" if match.group(2) else "[^/]+")
            continue
        if not _LITERAL.fullmatch(segment):
            raise ConfigurationError(f"unsupported characters in path pattern {pattern!r}")
        out.append(re.escape(segment))
    return re.compile("/" + "/".join(out))


def _methods(method: str | Iterable[str]) -> frozenset[str] | None:
    names = [method] if isinstance(method, str) else list(method)
    if "*" in names:
        return None
    if not names or not all(isinstance(m, str) and re.fullmatch(r"[A-Za-z]+", m) for m in names):
        raise ConfigurationError(f"not HTTP methods: {method!r}")
    return frozenset(m.upper() for m in names)


@dataclass(frozen=True)
class _Entry:
    methods: frozenset[str] | None
    pattern: str
    regex: re.Pattern[str]
    rule: RuleSource


class RoutePolicy:
    """Ordered ``(method, path pattern) -> rule`` entries and a default.

    ``RoutePolicy({"/public/*": AccessRule.public(), ("POST", "/docs"): AccessRule.auth(
    "docs.write")}, default=AccessRule.agent())``. ``method`` is a name, a list of names or
    ``"*"``. A rule may be a callable choosing the rule from the buffered request.
    """

    def __init__(
        self,
        rules: Mapping[str | tuple[str | Sequence[str], str], RuleSource]
        | Iterable[tuple[str | Sequence[str], str, RuleSource]] = (),
        *,
        default: RuleSource | None = None,
    ) -> None:
        self.default: RuleSource = default if default is not None else AccessRule.agent()
        self._entries: list[_Entry] = []
        items: Iterable[tuple[str | Sequence[str], str, RuleSource]]
        if isinstance(rules, Mapping):
            items = [
                ((k[0], k[1], v) if isinstance(k, tuple) else ("*", k, v)) for k, v in rules.items()
            ]
        else:
            items = rules
        for method, pattern, rule in items:
            self.add(method, pattern, rule)

    def add(self, method: str | Sequence[str], pattern: str, rule: RuleSource) -> RoutePolicy:
        if not isinstance(rule, AccessRule) and not callable(rule):
            raise ConfigurationError(f"not an AccessRule or a rule function: {rule!r}")
        self._entries.append(_Entry(_methods(method), pattern, compile_path(pattern), rule))
        return self

    def match(self, method: str, path: str) -> RuleSource:
        """The first entry matching, else the default."""
        upper = method.upper()
        for entry in self._entries:
            if (
                entry.methods is None
                or upper in entry.methods
                or (upper == "HEAD" and "GET" in entry.methods)
            ) and entry.regex.fullmatch(path):
                return entry.rule
        return self.default

    def static_rules(self) -> list[AccessRule]:
        """Every rule given as a value (not as a function): for configuration checks."""
        rules = [e.rule for e in self._entries if isinstance(e.rule, AccessRule)]
        if isinstance(self.default, AccessRule):
            rules.append(self.default)
        return rules


@dataclass(frozen=True)
class BodyRule:
    """A rule read from the request body (an MCP ``tools/call``: :func:`mcp_tool_rules`),
    applied only once the request's signature has verified, so that the body of a request
    nobody vouches for is never parsed. ``floor`` is the weakest rule ``decide`` returns:
    an unsigned request is challenged for it. With a ``public`` floor the body has to be read
    first (it may need no signature at all), as for any plain rule function."""

    decide: Callable[[HttpRequest], AccessRule]
    floor: AccessRule

    def __call__(self, request: HttpRequest) -> AccessRule:
        return self.decide(request)

    @property
    def after_verification(self) -> bool:
        """Whether the rule is applied after the signature verified (a floor above
        ``public``)."""
        return self.floor.level != PUBLIC


def resolve_rule(source: RuleSource, request: HttpRequest) -> AccessRule:
    rule = source if isinstance(source, AccessRule) else source(request)
    if not isinstance(rule, AccessRule):
        raise ConfigurationError(f"a rule function returned {rule!r}, not an AccessRule")
    return rule


F = TypeVar("F", bound=Callable[..., Any])
RULE_ATTRIBUTE = "__aauth_rule__"


def requires(rule: AccessRule) -> Callable[[F], F]:
    """Decorate a Starlette or FastAPI endpoint with its rule; the middleware finds it through
    the app's routes and prefers it to the route policy."""
    if not isinstance(rule, AccessRule):
        raise ConfigurationError("@requires takes an AccessRule")

    def mark(endpoint: F) -> F:
        setattr(endpoint, RULE_ATTRIBUTE, rule)
        return endpoint

    return mark


def endpoint_rule(scope: Mapping[str, Any]) -> AccessRule | None:
    """The :func:`requires` rule of the Starlette route ``scope`` reaches, if any."""
    app = scope.get("app")
    routes = getattr(app, "routes", None)
    return _rule_in(routes, dict(scope), 0) if routes else None


def _rule_in(routes: Iterable[Any], scope: dict[str, Any], depth: int) -> AccessRule | None:
    from starlette.routing import Match

    if depth > 8:
        return None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot match this scope type  # noqa: S112
            continue
        if match != Match.FULL:
            continue
        endpoint = child.get("endpoint", getattr(route, "endpoint", None))
        rule = getattr(endpoint, RULE_ATTRIBUTE, None)
        if isinstance(rule, AccessRule):
            return rule
        inner = getattr(route, "routes", None)
        if inner:
            return _rule_in(inner, {**scope, **child}, depth + 1)
        return None
    return None


# -- MCP: a rule per tool, read from the JSON-RPC body -----------------------------------------


def mcp_tool_calls(body: bytes | None) -> tuple[str, ...] | None:
    """The tool names of the ``tools/call`` requests in a JSON-RPC body (a message or a
    batch), in order; ``None`` when the body is not JSON-RPC at all. Never raises."""
    if not body:
        return None
    try:
        data = loads_json(body)
    except (ValueError, TypeError):
        return None
    messages = data if isinstance(data, list) else [data]
    if not messages or not all(isinstance(m, dict) for m in messages):
        return None
    names = []
    for message in messages:
        if message.get("method") != "tools/call":
            continue
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        names.append(name if isinstance(name, str) else "")
    return tuple(names)


def mcp_tool_rules(
    tools: Mapping[str, AccessRule], *, default: AccessRule, unknown: AccessRule | None = None
) -> BodyRule:
    """A rule function for an MCP endpoint: ``tools/call`` of tool ``t`` requires
    ``tools[t]`` (a tool not listed requires ``unknown``, default ``default``); every other
    message requires ``default``. A batch requires the strictest of its messages."""
    for name, rule in tools.items():
        if not isinstance(name, str) or not isinstance(rule, AccessRule):
            raise ConfigurationError("mcp_tool_rules maps tool names to AccessRules")
    fallback = unknown if unknown is not None else default

    def rule_for(request: HttpRequest) -> AccessRule:
        names = mcp_tool_calls(request.body)
        if not names:
            return default
        rule = tools.get(names[0], fallback)
        for name in names[1:]:
            rule = rule.combine(tools.get(name, fallback))
        return rule

    floor = min((default, fallback, *tools.values()), key=lambda rule: LEVELS[rule.level])
    return BodyRule(rule_for, floor)


def with_scopes(rule: AccessRule, *scopes: str) -> AccessRule:
    """``rule`` requiring ``scopes`` as well."""
    return replace(rule, scopes=tuple(dict.fromkeys((*rule.scopes, *scopes))))


__all__ = [
    "ACCESS_MODES",
    "AGENT",
    "AUTH",
    "LEVELS",
    "PERSON",
    "PER_CALL",
    "PUBLIC",
    "SESSION",
    "AccessRule",
    "BodyRule",
    "RoutePolicy",
    "RuleSource",
    "compile_path",
    "endpoint_rule",
    "mcp_tool_calls",
    "mcp_tool_rules",
    "requires",
    "resolve_rule",
    "with_scopes",
]
