"""``aauth-agents serve resource|ps|ap --issuer https://HOST``: run the demo resource, a
person server or an agent provider with uvicorn until interrupted.

``--workers N`` runs N processes on one listening socket (:mod:`.workers`); they share
their state, so N > 1 needs somewhere shared: ``--redis URL`` for the resource (replay
cache, revocations, pending records, person-token records, the people's files),
``--data DIR`` (SQLite) or
``--database postgresql://...`` for the person server and the agent provider, whose keys
live there too. Each worker builds its app with the ``build_*`` function of its party from
plain options, so the parent does the one-time work (creating keys, an account, enrolment
codes) before the workers start."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from .common import (
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    Subparsers,
    add_map_option,
    guarded,
    issuer_type,
    log_to,
    port_type,
)
from .workers import (
    AppFactory,
    Built,
    announcer,
    listening_line,
    serve_workers,
)

if TYPE_CHECKING:
    from ..servers.limits import ServerLimits

NAME = "serve"


def register(commands: Subparsers) -> None:
    serve = commands.add_parser(
        NAME,
        help="run an AAuth server",
        description="Run an AAuth server with uvicorn until interrupted.",
    )
    serve_commands = serve.add_subparsers(dest="serve_command", required=True)
    _register_resource(serve_commands)
    ps = serve_commands.add_parser(
        "ps",
        help="run a person server",
        description="Run a person server as https://HOST: person and auth tokens, deferred "
        "responses, missions, permission, audit, clarification and revocation, with the "
        "person's pages (consent, sign-in, dashboard), stored in SQLite under --data (in "
        "memory without it). Prints the URL it listens on.",
    )
    ap = serve_commands.add_parser(
        "ap",
        help="run an agent provider",
        description="Run an agent provider as https://HOST: metadata and JWKS, enrolment "
        "with one-time codes (--enroll prints one per agent), token refresh, sub-agents, "
        "stored in SQLite under --data (in memory without it). With --dir DIR instead: "
        "serve the self-hosted provider `keys init` wrote there (its metadata and JWKS at "
        "its issuer), so resources verify the agent tokens the agent mints itself. Prints "
        "the URL it listens on.",
    )
    _add_party_options(ps, "person server")
    _add_party_options(ap, "agent provider", required=False)
    ap.add_argument(
        "--dir",
        metavar="DIR",
        help="serve the self-hosted agent provider of the `keys init` agent in DIR",
    )
    _add_ps_options(ps)
    ap.add_argument(
        "--ps",
        type=issuer_type,
        metavar="https://PS",
        help="the person server written into agent tokens",
    )
    ap.add_argument(
        "--enroll",
        action="append",
        default=[],
        metavar="aauth:LOCAL@DOMAIN",
        help="print a one-time enrolment code for this agent (repeatable)",
    )


def _register_resource(serve_commands: Subparsers) -> None:
    resource = serve_commands.add_parser(
        "resource",
        help="run the demo resource (REST routes and a protected MCP server)",
        description="Run the demo resource as https://HOST: GET /whoami (agent token), "
        "GET /profile (person token), GET /files (auth token, files.read), POST /files "
        "(files.write, step-up) and an MCP server at /mcp with a tool per level. Prints the "
        "URL it listens on.",
    )
    resource.add_argument(
        "--issuer",
        required=True,
        type=issuer_type,
        metavar="https://HOST",
        help="the resource's identifier (the Host agents sign for)",
    )
    _add_listen_options(resource)
    add_map_option(
        resource,
        "reach another party's metadata and JWKS (an agent provider, a person server) "
        "at the second origin; loopback is admitted for these hosts only (repeatable)",
    )
    resource.add_argument(
        "--key-file",
        metavar="PATH",
        help="the resource's signing key as a private JWK, created if missing (default: a "
        "new key each run; every worker and every process serving the same identifier "
        "needs the same one)",
    )
    resource.add_argument(
        "--redis",
        type=redis_url_type,
        metavar="redis://HOST:PORT/DB",
        help="keep the replay cache, revocations, pending records and person-token records "
        "in Redis, shared by every worker and every process using the same Redis "
        "(default: in memory, this process only)",
    )


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=port_type,
        default=8000,
        help="port to listen on (default 8000; 0: any)",
    )
    parser.add_argument(
        "--workers",
        type=workers_type,
        default=1,
        metavar="N",
        help="serve with N processes on the one socket (default 1); N > 1 needs shared "
        "state (--redis for the resource, --data or --database for a PS or an AP)",
    )
    _add_limit_options(parser)


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    """The edge limits (:class:`~aauth_agents.servers.ServerLimits`) a deployment tunes."""
    from ..servers.limits import ServerLimits

    default = ServerLimits()
    parser.add_argument(
        "--header-timeout",
        type=_positive(float),
        default=default.header_timeout,
        metavar="SECONDS",
        help="close a connection that has not sent a whole request head by then (408) "
        f"(default {default.header_timeout:g})",
    )
    parser.add_argument(
        "--body-timeout",
        type=_positive(float),
        default=default.body_timeout,
        metavar="SECONDS",
        help=f"refuse a body not received by then (408) (default {default.body_timeout:g})",
    )
    parser.add_argument(
        "--max-concurrency",
        type=_positive(int),
        default=default.max_concurrency,
        metavar="N",
        help=f"requests in flight before 503 (default {default.max_concurrency})",
    )
    parser.add_argument(
        "--max-connections-per-address",
        type=_positive(int, zero=True),
        default=default.max_connections_per_address,
        metavar="N",
        help="open connections from one client address (default "
        f"{default.max_connections_per_address}; 0: no cap, e.g. behind a reverse proxy)",
    )


def _positive(kind: type[float] | type[int], *, zero: bool = False) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def server_limits(args: argparse.Namespace) -> ServerLimits:
    """The :class:`~aauth_agents.servers.ServerLimits` of the command line's options."""
    from ..servers.limits import ServerLimits

    return ServerLimits(
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_concurrency=args.max_concurrency,
        max_connections_per_address=args.max_connections_per_address or None,
    )


def _add_party_options(party: argparse.ArgumentParser, what: str, *, required: bool = True) -> None:
    party.add_argument(
        "--issuer",
        required=required,
        type=issuer_type,
        metavar="https://HOST",
        help=f"the {what}'s identifier (the Host agents sign for)",
    )
    _add_listen_options(party)
    where = party.add_mutually_exclusive_group()
    where.add_argument(
        "--data",
        metavar="DIR",
        help="keep keys and state in SQLite in DIR (default: in memory, gone when it stops)",
    )
    where.add_argument(
        "--database",
        type=database_url_type,
        metavar="postgresql://USER@HOST:PORT/DB",
        help="keep keys and state in PostgreSQL instead",
    )
    add_map_option(
        party,
        "reach another party (its metadata, JWKS, revocation endpoint) at the second "
        "origin; loopback is admitted for these hosts only (repeatable)",
    )


def _add_ps_options(ps: argparse.ArgumentParser) -> None:
    ps.add_argument(
        "--auto-approve",
        action="store_true",
        help="grant every request at once for --person (unattended development runs)",
    )
    ps.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        default=[],
        type=trusted_proxy_type,
        metavar="IP|CIDR",
        help="a reverse proxy in front of the PS (repeatable): its X-Forwarded-For / "
        "Forwarded name the client address and X-Forwarded-Proto the scheme; from anyone "
        "else they are ignored (default: none)",
    )
    ps.add_argument(
        "--person",
        metavar="NAME",
        help="create this person's account if missing (password from $AAUTH_AGENTS_PASSWORD, "
        "else generated and printed once); with --auto-approve the default is 'person'",
    )


def trusted_proxy_type(value: str) -> str:
    """``--trusted-proxy``: an IP address or a CIDR network."""
    import ipaddress

    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address or CIDR: {value!r}") from None
    return value.strip()


def workers_type(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}") from None
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError(f"workers: 1 to 64, not {value!r}")
    return number


def database_url_type(value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(f"not a PostgreSQL URL (postgresql://...): {value!r}")
    return value


def redis_url_type(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"not a Redis URL (redis://HOST:PORT/DB): {value!r}")
    return value


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    err = sys.stderr
    if args.serve_command == "resource":
        return guarded(lambda: _serve_resource(args, sys.stdout, err), err)
    if args.serve_command == "ps":
        return guarded(lambda: _serve_ps(args, env, sys.stdout, err), err)
    if args.dir is not None:
        return guarded(lambda: _serve_local_provider(args, sys.stdout, err), err)
    if args.issuer is None:
        print("aauth-agents: serve ap needs --issuer https://HOST or --dir DIR", file=err)
        return EXIT_USAGE
    return guarded(lambda: _serve_ap(args, sys.stdout, err), err)


def _check_workers(args: argparse.Namespace) -> None:
    """N > 1 workers only over shared state: each would otherwise keep its own (a replay
    to another worker accepted, a revocation one of them never hears of)."""
    if args.workers == 1:
        return
    if args.serve_command == "resource" and args.redis is None:
        raise Failure(
            EXIT_USAGE,
            "--workers N > 1 needs --redis URL: the workers share the replay cache, "
            "revocations, pending records and the demo files there",
        )
    if args.serve_command in ("ps", "ap") and args.data is None and args.database is None:
        raise Failure(
            EXIT_USAGE,
            f"--workers N > 1 needs --data DIR or --database postgresql://...: the "
            f"{args.serve_command} workers share their keys and state there",
        )


def _resource_key(path: str | None, err: IO[str]) -> Any:
    from ..agent.storage import DirectoryKeyStore, read_private_key, write_private_key
    from ..keys import PrivateKey

    if path is None:
        print(
            "aauth-agents: no --key-file: signing with a new key for this run", file=err, flush=True
        )
        return PrivateKey.generate(kid="demo-resource-1")
    file = Path(path).expanduser()
    store = DirectoryKeyStore(file.parent)
    key = read_private_key(store, file.name)
    if key is None:
        key = PrivateKey.generate()
        write_private_key(store, file.name, key)
        print(f"aauth-agents: created the signing key {file} (kid {key.kid})", file=err, flush=True)
    return key


def _mapped(args: argparse.Namespace, err: IO[str], reached: str = "") -> dict[str, str]:
    """The ``--map`` options, each announced on ``err``: a development setting."""
    maps = dict(args.maps)
    for origin, destination in maps.items():
        print(
            f"aauth-agents: WARNING --map: {origin} is reached at {destination}{reached}; "
            "loopback is admitted for it (development)",
            file=err,
            flush=True,
        )
    return maps


def build_resource(options: Mapping[str, Any]) -> Built:
    """The demo resource of ``options`` (``issuer``, ``maps``, ``key``: a private JWK,
    ``redis``: a URL or ``None``), in this process; with ``redis``, its stores and the
    people's files are there, shared by every worker and process serving the identifier."""
    from ..keys import PrivateKey
    from ..servers.demo_resource import RedisDemoFiles, demo_resource, mapped_discovery
    from ..stores import Stores

    stores = files = None
    if options.get("redis"):
        from ..stores.redis import RedisConnection

        stores = Stores.redis(options["redis"])
        files = RedisDemoFiles(RedisConnection(options["redis"]))
    app = demo_resource(
        options["issuer"],
        issuer_keys=mapped_discovery(options["maps"]),
        signing_key=PrivateKey.from_jwk(options["key"]),
        stores=stores,
        files=files,
    )
    return Built(app)  # a worker's Redis connections end with it


def _serve_resource(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    _check_workers(args)
    log_to(err)  # before FastMCP is imported: its logging.basicConfig() then changes nothing
    maps = _mapped(args, err, ", for its metadata and JWKS only")
    key = _resource_key(args.key_file, err)
    options = {
        "issuer": args.issuer,
        "maps": maps,
        "key": key.to_jwk(private=True),
        "redis": args.redis,
    }
    if args.redis is None:
        print(
            "aauth-agents: no --redis: replay cache, revocations, pending records and the "
            "demo files are kept in this process's memory",
            file=err,
            flush=True,
        )
    lines = [
        f"metadata  {args.issuer}/.well-known/aauth-resource.json",
        "REST      GET /whoami, GET /profile, GET /files, GET /files/NAME, POST /files",
        f"MCP       {args.issuer}/mcp",
    ]
    factory = AppFactory(build_resource, options)
    if args.workers > 1:
        return _serve_workers(factory, args, out, lines)
    return serve_app(build_resource(options).app, args, out, lines, lifespan="on")


def _serve_workers(
    factory: AppFactory, args: argparse.Namespace, out: IO[str], lines: Sequence[str]
) -> int:
    return serve_workers(
        factory,
        workers=args.workers,
        host=args.host,
        port=args.port,
        limits=server_limits(args),
        announce=announcer(out, args.serve_command, args.issuer, args.host, lines, args.workers),
    )


def serve_app(
    app: Any,
    args: argparse.Namespace,
    out: IO[str],
    lines: Sequence[str],
    *,
    lifespan: Literal["on", "off"] = "off",
) -> int:
    """Run ``app`` with uvicorn on ``--host``/``--port`` until interrupted, under the edge
    limits of the options (:func:`server_limits`); print the URL (``... listening on
    http://HOST:PORT``) and ``lines`` once it listens."""
    import asyncio

    import uvicorn

    from ..servers.edge import uvicorn_config

    config = uvicorn_config(
        app, host=args.host, port=args.port, limits=server_limits(args), lifespan=lifespan
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn could not start (it logged why)
            pass

    async def run() -> bool:
        task = asyncio.create_task(serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            line = listening_line(args.serve_command, args.issuer, args.host, port)
            print(line, file=out, flush=True)
            for line in lines:
                print(f"  {line}", file=out, flush=True)
        await task
        return server.started

    if not asyncio.run(run()):
        raise Failure(EXIT_NETWORK, f"could not listen on {args.host}:{args.port}")
    return EXIT_OK


def _serve_setup(args: argparse.Namespace, err: IO[str]) -> dict[str, str]:
    _check_workers(args)
    log_to(err)
    maps = _mapped(args, err)
    if args.data is None and args.database is None:
        print(
            "aauth-agents: no --data: keys and state are kept in memory for this run",
            file=err,
            flush=True,
        )
    elif args.data is not None:
        Path(args.data).expanduser().mkdir(parents=True, exist_ok=True, mode=0o700)
    return maps


def _database(args: argparse.Namespace) -> str:
    """Where a PS or an AP keeps its keys and state: the PostgreSQL URL, the data
    directory, or ``":memory:"``."""
    if args.database is not None:
        return str(args.database)
    return str(Path(args.data).expanduser()) if args.data else ":memory:"


def person_server(options: Mapping[str, Any]) -> Any:
    """The :class:`~aauth_agents.servers.person_server.PersonServer` of ``options``
    (``issuer``, ``database``, ``maps``, ``auto_approve``, ``person``, ``threads``,
    ``trusted_proxies``)."""
    from ..discovery import AsyncDiscovery
    from ..servers.person_server import (
        AutoApprove,
        InteractiveConsent,
        PersonServer,
        PersonServerConfig,
    )
    from ..transport import AsyncMappedTransport

    maps = options["maps"]
    discovery = AsyncDiscovery()
    if maps:
        from ..servers.demo_resource import mapped_discovery  # loopback for mapped hosts only

        discovery = mapped_discovery(maps)
    person = options["person"]
    auto = options["auto_approve"]
    return PersonServer(
        PersonServerConfig(
            issuer=options["issuer"],
            database=options["database"],
            policy=AutoApprove(person) if auto else InteractiveConsent(),
            default_person=person if auto else None,
            discovery=discovery,
            transport=AsyncMappedTransport(maps),
            database_threads=options["threads"],
            trusted_proxies=tuple(options.get("trusted_proxies", ())),
        )
    )


def build_person_server(options: Mapping[str, Any]) -> Built:
    """A person server with the person's pages, in this process (a worker)."""
    from ..servers.person_server import create_person_server, ui_routes

    ps = person_server(options)
    return Built(create_person_server(ps, routes=ui_routes(ps)), ps.aclose)


def _serve_ps(args: argparse.Namespace, env: Mapping[str, str], out: IO[str], err: IO[str]) -> int:
    import secrets

    from ..servers.person_server import create_person_server, ui_routes

    maps = _serve_setup(args, err)
    person = args.person or ("person" if args.auto_approve else None)
    options = {
        "issuer": args.issuer,
        "database": _database(args),
        "maps": maps,
        "auto_approve": args.auto_approve,
        "person": person,
        # a SQLite file other processes write: wait for its locks off the event loop
        "threads": args.workers > 1 and args.database is None,
        "trusted_proxies": list(args.trusted_proxies),
    }
    ps = person_server(options)  # the keys are created once, here
    try:
        if person is not None and not ps.accounts.exists(person):
            password = env.get("AAUTH_AGENTS_PASSWORD") or secrets.token_urlsafe(12)
            ps.accounts.create_account(person, password)
            shown = "from $AAUTH_AGENTS_PASSWORD" if env.get("AAUTH_AGENTS_PASSWORD") else password
            print(
                f"aauth-agents: created the account {person} (password: {shown})",
                file=err,
                flush=True,
            )
        if args.auto_approve:
            print(
                f"aauth-agents: WARNING --auto-approve: every request is granted for {person}",
                file=err,
                flush=True,
            )
        policy = "auto-approve for " + str(person) if args.auto_approve else "consent"
        lines = [
            f"metadata  {args.issuer}/.well-known/aauth-person.json",
            f"pages     {args.issuer}/interact/... (consent), /signin, /dashboard",
            f"policy    {policy}",
        ]
        if args.workers == 1:
            return serve_app(create_person_server(ps, routes=ui_routes(ps)), args, out, lines)
    finally:
        ps.close()
    return _serve_workers(AppFactory(build_person_server, options), args, out, lines)


def agent_provider(options: Mapping[str, Any]) -> Any:
    """The :class:`~aauth_agents.servers.agent_provider.AgentProviderServer` of ``options``
    (``issuer``, ``ps``, ``maps``, ``database``)."""
    from ..servers.agent_provider import AgentProviderConfig, AgentProviderServer

    return AgentProviderServer(
        AgentProviderConfig(
            issuer=options["issuer"],
            ps=options["ps"],
            connect=options["maps"],
            database=options["database"],
        )
    )


def build_agent_provider(options: Mapping[str, Any]) -> Built:
    """An agent provider, in this process (a worker)."""
    ap = agent_provider(options)
    return Built(ap.app(), ap.close)


def _serve_ap(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    maps = _serve_setup(args, err)
    options = {"issuer": args.issuer, "ps": args.ps, "maps": maps, "database": _database(args)}
    ap = agent_provider(options)  # the key is created once, here
    try:
        lines = [
            f"metadata  {args.issuer}/.well-known/aauth-agent.json",
            f"enrol     POST {args.issuer}/enroll (a one-time code, hwk-signed)",
        ]
        for agent_id in args.enroll:
            lines.append(f"code      {agent_id}: {ap.create_enrollment(agent_id)}")
        if args.workers == 1:
            return serve_app(ap.app(), args, out, lines)
    finally:
        ap.close()
    return _serve_workers(AppFactory(build_agent_provider, options), args, out, lines)


def build_local_provider(options: Mapping[str, Any]) -> Built:
    """The self-hosted provider of the ``keys init`` agent in ``options["dir"]``."""
    from ..agent.provider import load_local_agent
    from ..agent.storage import DirectoryKeyStore

    agent = load_local_agent(DirectoryKeyStore(Path(options["dir"]).expanduser()))
    return Built(agent.provider.app())


def _serve_local_provider(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """§Agent Token: the provider of a self-hosted agent publishes its metadata and JWKS;
    the agent mints its own tokens, so nothing else is served (and nothing needs sharing
    between workers)."""
    from ..agent.provider import load_local_agent
    from ..agent.storage import DirectoryKeyStore

    log_to(err)
    if args.enroll or args.data or args.database or args.maps or args.ps:
        raise Failure(
            EXIT_USAGE,
            "--dir serves a keys-init provider: no --enroll, --data, --database, --map or --ps",
        )
    agent = load_local_agent(DirectoryKeyStore(Path(args.dir).expanduser()))
    issuer = agent.provider.issuer
    if args.issuer is not None and args.issuer != issuer:
        raise Failure(EXIT_USAGE, f"the provider in {args.dir} is {issuer}, not {args.issuer}")
    args.issuer = issuer
    lines = [
        f"metadata  {issuer}/.well-known/aauth-agent.json",
        f"agent     {agent.agent_id} (its tokens are minted by the agent itself)",
    ]
    if args.workers > 1:
        return _serve_workers(AppFactory(build_local_provider, {"dir": args.dir}), args, out, lines)
    return serve_app(agent.provider.app(), args, out, lines)
