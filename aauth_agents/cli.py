"""The ``aauth-agents`` command line. The one place that reads the environment.

``aauth-agents keys init``  create an agent key and its self-hosted provider key
``aauth-agents keys show``  print the agent id and key thumbprint (and what a PS needs)
``aauth-agents fetch URL``  one AAuth request from the shell, every challenge handled
``aauth-agents mcp-proxy URL``  a stdio MCP server forwarding to an AAuth-protected MCP server
``aauth-agents demo``       the whole AAuth ladder on loopback, step by step
``aauth-agents serve resource --issuer https://HOST``  run the demo resource (REST and MCP)
``aauth-agents serve ps --issuer https://HOST``        run a person server
``aauth-agents serve ap --issuer https://HOST``        run an agent provider

Keys live in a directory (``--dir``; default ``$AAUTH_AGENTS_DIR``, else a per-user config
directory) or in the OS keychain (``--keyring SERVICE``). Exit status: 0 success (a 2xx
response for ``fetch``), 1 a non-2xx response, 2 a usage error, 3 an AAuth error (its code is
printed), 4 a network error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

EXIT_OK = 0
EXIT_HTTP = 1
EXIT_USAGE = 2
EXIT_AAUTH = 3
EXIT_NETWORK = 4

ENV_DIR = "AAUTH_AGENTS_DIR"

# RFC 9110 §5.6.2 token
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5 field-value: visible characters, spaces and tabs, obs-text; no CR, LF or NUL
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
#: Headers a caller may not set with ``-H``: the client computes them, and a different
#: ``Host`` would change what is signed (``--map`` is how to send a request elsewhere).
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "signature",
        "signature-input",
        "signature-key",
    }
)


def parse_header_option(value: str) -> tuple[str, str]:
    """Parse ``-H 'Name: value'`` into ``(name, value)``.

    ``name`` is an RFC 9110 token; surrounding whitespace of the value is dropped; CR, LF,
    NUL and other control characters are refused, as are the headers the client sets itself
    (:data:`RESERVED_HEADERS`). Raises ``ValueError`` with the reason.
    """
    if not isinstance(value, str):
        raise ValueError("a header is text")
    name, sep, field_value = value.partition(":")
    if not sep:
        raise ValueError(f"expected 'Name: value', got {value!r}")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    field_value = field_value.strip(" \t")
    if not _FIELD_VALUE.fullmatch(field_value):
        raise ValueError(f"header {name} has a control character or a line break")
    try:
        field_value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name} has characters outside Latin-1") from None
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"{name} is set by aauth-agents itself and cannot be given with -H")
    return name, field_value


def default_directory(
    env: Mapping[str, str], *, platform: str = sys.platform, home: Path | None = None
) -> Path:
    """``$AAUTH_AGENTS_DIR``, else the per-user configuration directory for the platform:
    ``%APPDATA%\\aauth-agents`` (Windows), ``~/Library/Application Support/aauth-agents``
    (macOS), ``$XDG_CONFIG_HOME/aauth-agents`` or ``~/.config/aauth-agents`` (elsewhere)."""
    explicit = env.get(ENV_DIR)
    if explicit:
        return Path(explicit).expanduser()
    home = home if home is not None else Path.home()
    if platform.startswith("win"):
        base = env.get("APPDATA")
        return (Path(base) if base else home / "AppData" / "Roaming") / "aauth-agents"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "aauth-agents"
    xdg = env.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config") / "aauth-agents"


# -- the parser ----------------------------------------------------------------------------------


def _header_type(value: str) -> tuple[str, str]:
    try:
        return parse_header_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _map_type(value: str) -> tuple[str, str]:
    from .transport import parse_mapping_option

    try:
        return parse_mapping_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _issuer_type(value: str) -> str:
    from .protocol.identifiers import validate_server_identifier

    try:
        return validate_server_identifier(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port_type(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value!r}")
    return port


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {value!r}")
    return number


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dir",
        metavar="DIR",
        help=f"key directory (default: ${ENV_DIR}, else a per-user config directory)",
    )
    where.add_argument(
        "--keyring",
        metavar="SERVICE",
        help="keep the keys in the OS keychain under SERVICE instead of a directory "
        "(needs: pip install 'aauth-agents[keyring]')",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aauth-agents",
        description="AAuth (draft-hardt-oauth-aauth-protocol-11) for AI agents.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="walk the whole AAuth ladder on loopback and print each step",
        description="Start an agent provider, a person server and the demo resource on "
        "127.0.0.1 (in-memory storage), enrol an agent and walk the ladder: agent identity, "
        "person identity, three-party authorization with consent, step-up, a clarification, "
        "a mission with permission and audit, revocation. Exit 0 when every step passed.",
    )
    demo.add_argument(
        "--interactive",
        action="store_true",
        help="the person decides at the terminal (and in the browser, where the PS has its "
        "pages) instead of a scripted person",
    )

    keys = commands.add_parser(
        "keys",
        help="create or show the agent's keys",
        description="An agent key, and the key of a self-hosted agent provider that issues "
        "the agent's tokens (https://DOMAIN for aauth:LOCAL@DOMAIN).",
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_commands.add_parser(
        "init",
        help="create the agent key and its provider key",
        description="Create an agent key and a self-hosted agent provider key. The provider "
        "is https://DOMAIN; a PS trusts it through its metadata and JWKS "
        "(keys show --provider-metadata).",
    )
    init.add_argument("--agent-id", required=True, metavar="aauth:LOCAL@DOMAIN")
    init.add_argument("--ps", metavar="https://PS", help="the agent's person server")
    init.add_argument("--name", help="display name in the provider's metadata")
    init.add_argument("--alg", choices=("Ed25519", "ES256"), default="Ed25519")
    init.add_argument(
        "--lifetime", type=int, default=3600, help="agent token lifetime in seconds (max 86400)"
    )
    init.add_argument("--force", action="store_true", help="replace an existing agent")
    _add_store_options(init)
    show = keys_commands.add_parser(
        "show",
        help="print the agent id and key thumbprint",
        description="Print the agent id, the key thumbprint, the provider and the PS; with "
        "--provider-metadata, all of it as JSON with the provider's metadata and JWKS.",
    )
    show.add_argument(
        "--provider-metadata",
        action="store_true",
        help="print JSON with the provider's metadata and JWKS (what a PS needs to trust it)",
    )
    _add_store_options(show)

    fetch = commands.add_parser(
        "fetch",
        help="send one AAuth request, handling every challenge",
        description="Send one signed request as the agent; answer the resource's challenges "
        "(agent, person and auth tokens, interaction, deferred responses) and print the final "
        "response body on stdout. Exit 0 on a 2xx response.",
    )
    fetch.add_argument("url")
    fetch.add_argument("-X", "--request", dest="method", metavar="METHOD")
    fetch.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        type=_header_type,
        metavar="'Name: value'",
    )
    fetch.add_argument(
        "-d", "--data", metavar="DATA", help="request body; @FILE reads a file, @- stdin"
    )
    fetch.add_argument(
        "--map",
        dest="maps",
        action="append",
        default=[],
        type=_map_type,
        metavar="https://HOST=http://127.0.0.1:PORT",
        help="connect to the second origin for requests to the first; what is signed and "
        "compared is unchanged (repeatable)",
    )
    fetch.add_argument("--justification", help="why the agent asks (shown to the person)")
    fetch.add_argument(
        "--max-wait",
        type=_positive,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for approval in all (default 600)",
    )
    fetch.add_argument(
        "--timeout",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="network timeout of each request (default 60)",
    )
    fetch.add_argument(
        "-v", "--verbose", action="store_true", help="print each step of the flow on stderr"
    )
    _add_store_options(fetch)

    proxy = commands.add_parser(
        "mcp-proxy",
        help="a stdio MCP server forwarding to an AAuth-protected streamable HTTP MCP server",
        description="Serve MCP on stdin/stdout for a host that speaks only stdio, and "
        "forward every message to the streamable HTTP MCP server at URL, signed as the agent "
        "(every AAuth challenge answered). When the person must approve, the host shows the "
        "link (URL-mode elicitation) if it can; otherwise it gets a log message and the "
        "browser opens the link. Nothing but MCP messages is written on stdout; the log goes "
        "to stderr. Ends when stdin ends.",
    )
    proxy.add_argument("url", metavar="URL", help="the MCP endpoint, e.g. https://HOST/mcp")
    proxy.add_argument(
        "--map",
        dest="maps",
        action="append",
        default=[],
        type=_map_type,
        metavar="https://HOST=http://127.0.0.1:PORT",
        help="connect to the second origin for requests to the first; what is signed and "
        "compared is unchanged (repeatable)",
    )
    proxy.add_argument("--justification", help="why the agent asks (shown to the person)")
    proxy.add_argument(
        "--max-wait",
        type=_positive,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the person's approval of one request (default 600)",
    )
    proxy.add_argument(
        "--timeout",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="network timeout of each request (default 60); a response stream may stay "
        "silent for 300 seconds",
    )
    proxy.add_argument(
        "--no-browser", action="store_true",
        help="never open the browser (the link is in the host's log and on stderr)",
    )
    proxy.add_argument(
        "-v", "--verbose", action="store_true", help="log each step on stderr"
    )
    _add_store_options(proxy)

    serve = commands.add_parser(
        "serve",
        help="run an AAuth server",
        description="Run an AAuth server with uvicorn until interrupted.",
    )
    serve_commands = serve.add_subparsers(dest="serve_command", required=True)
    resource = serve_commands.add_parser(
        "resource",
        help="run the demo resource (REST routes and a protected MCP server)",
        description="Run the demo resource as https://HOST: GET /whoami (agent token), "
        "GET /profile (person token), GET /files (auth token, files.read), POST /files "
        "(files.write, step-up) and an MCP server at /mcp with a tool per level. Prints the "
        "URL it listens on.",
    )
    resource.add_argument(
        "--issuer", required=True, type=_issuer_type, metavar="https://HOST",
        help="the resource's identifier (the Host agents sign for)",
    )
    resource.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    resource.add_argument(
        "--port", type=_port_type, default=8000, help="port to listen on (default 8000; 0: any)"
    )
    resource.add_argument(
        "--map",
        dest="maps",
        action="append",
        default=[],
        type=_map_type,
        metavar="https://HOST=http://127.0.0.1:PORT",
        help="reach another party's metadata and JWKS (an agent provider, a person server) "
        "at the second origin; loopback is admitted for these hosts only (repeatable)",
    )
    resource.add_argument(
        "--key-file",
        metavar="PATH",
        help="the resource's signing key as a private JWK, created if missing (default: a "
        "new key each run)",
    )
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
        "stored in SQLite under --data (in memory without it). Prints the URL it listens on.",
    )
    for party, what in ((ps, "person server"), (ap, "agent provider")):
        party.add_argument(
            "--issuer", required=True, type=_issuer_type, metavar="https://HOST",
            help=f"the {what}'s identifier (the Host agents sign for)",
        )
        party.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
        )
        party.add_argument(
            "--port", type=_port_type, default=8000,
            help="port to listen on (default 8000; 0: any)",
        )
        party.add_argument(
            "--data", metavar="DIR",
            help="keep keys and state in DIR (default: in memory, gone when it stops)",
        )
        party.add_argument(
            "--map",
            dest="maps",
            action="append",
            default=[],
            type=_map_type,
            metavar="https://HOST=http://127.0.0.1:PORT",
            help="reach another party (its metadata, JWKS, revocation endpoint) at the second "
            "origin; loopback is admitted for these hosts only (repeatable)",
        )
    ps.add_argument(
        "--auto-approve", action="store_true",
        help="grant every request at once for --person (unattended development runs)",
    )
    ps.add_argument(
        "--person", metavar="NAME",
        help="create this person's account if missing (password from $AAUTH_AGENTS_PASSWORD, "
        "else generated and printed once); with --auto-approve the default is 'person'",
    )
    ap.add_argument("--ps", type=_issuer_type, metavar="https://PS",
                    help="the person server written into agent tokens")
    ap.add_argument("--enroll", action="append", default=[], metavar="aauth:LOCAL@DOMAIN",
                    help="print a one-time enrolment code for this agent (repeatable)")
    return parser


# -- running --------------------------------------------------------------------------------------


class _Failure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _store(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    from .agent.storage import DirectoryKeyStore, KeyringKeyStore

    if args.keyring is not None:
        # A backend named in PYTHON_KEYRING_BACKEND is the user's explicit choice.
        return KeyringKeyStore(
            args.keyring, allow_insecure_backend=bool(env.get("PYTHON_KEYRING_BACKEND"))
        )
    return DirectoryKeyStore(Path(args.dir) if args.dir else default_directory(env))


def _describe(agent: Any) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "thumbprint": agent.thumbprint,
        "alg": agent.key.alg,
        "provider": agent.provider.issuer,
        "ps": agent.ps,
    }


def _print_description(description: Mapping[str, Any], store: Any, out: IO[str]) -> None:
    for name, value in description.items():
        if value is not None:
            print(f"{name}: {value}", file=out)
    print(f"store: {store.location}", file=out)


def _keys(args: argparse.Namespace, env: Mapping[str, str], out: IO[str], err: IO[str]) -> int:
    from .agent.provider import init_local_agent, load_local_agent

    store = _store(args, env)
    if args.keys_command == "init":
        agent = init_local_agent(
            store,
            args.agent_id,
            ps=args.ps,
            alg=args.alg,
            name=args.name,
            lifetime=args.lifetime,
            replace=args.force,
        )
        _print_description(_describe(agent), store, out)
        print(
            f"A PS trusts this agent through {agent.provider.issuer}/.well-known/"
            "aauth-agent.json and its JWKS: see `aauth-agents keys show --provider-metadata`.",
            file=err,
        )
        return EXIT_OK
    agent = load_local_agent(store)
    if args.provider_metadata:
        document = {**_describe(agent), **agent.provider_documents()}
        print(json.dumps(document, indent=2), file=out)
    else:
        _print_description(_describe(agent), store, out)
    return EXIT_OK


def _read_data(value: str | None, stdin: IO[bytes]) -> bytes | None:
    if value is None:
        return None
    if value == "@-":
        return stdin.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise _Failure(EXIT_USAGE, f"cannot read {value[1:]}: {exc.strerror}") from exc
    return value.encode("utf-8")


def _event_printer(err: IO[str]) -> Callable[[Any], None]:
    def show(event: Any) -> None:
        describe = getattr(event, "describe", None)
        text = describe() if callable(describe) else str(event)
        print(f"* {text}", file=err, flush=True)

    return show


def _fetch(
    args: argparse.Namespace,
    env: Mapping[str, str],
    out: IO[bytes],
    err: IO[str],
    stdin: IO[bytes],
    terminal: IO[str],
) -> int:
    import httpx

    from .agent.provider import load_identity
    from .transport import MappedTransport

    url = httpx.URL(args.url)
    if url.scheme not in ("http", "https") or not url.host:
        raise _Failure(EXIT_USAGE, f"not an http(s) URL: {args.url}")
    body = _read_data(args.data, stdin)
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    if not re.fullmatch(r"[A-Z]+", method):
        raise _Failure(EXIT_USAGE, f"invalid method {method!r}")
    identity = load_identity(_store(args, env))
    from .agent import AAuth

    verbose = _event_printer(err) if args.verbose else None
    if verbose is not None:
        verbose(f"agent {identity.agent_id} (key {identity.key.thumbprint()})")
        for origin, destination in args.maps:
            verbose(f"connections to {origin} go to {destination}")

    from .prompts import TerminalPrompts

    # The person is asked at the terminal when there is one (stdin is not the body), else
    # the prompts are JSON lines on stderr and questions cannot be answered.
    prompts = TerminalPrompts(stream=err, stdin=terminal,
                              interactive=None if args.data != "@-" else False)
    auth = AAuth(
        identity,
        capabilities=(
            ("interaction", "clarification") if prompts.interactive else ("interaction",)
        ),
        justification=args.justification,
        prompts=prompts,
        on_event=verbose,
        max_poll_seconds=args.max_wait,
    )
    transport = MappedTransport(dict(args.maps))
    timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, 10.0))
    with auth.client(transport=transport, timeout=timeout) as client:
        response = client.request(method, url, headers=args.headers, content=body)
    if verbose is not None:
        verbose(f"{response.status_code} {response.reason_phrase}")
    out.write(response.content)
    out.flush()
    if response.is_success:
        return EXIT_OK
    raise _Failure(EXIT_HTTP, f"HTTP {response.status_code} {response.reason_phrase}")


def _claim_stdout() -> IO[bytes]:
    """The process's stdout, for MCP messages only: a duplicate of file descriptor 1 is
    returned, and descriptor 1 and ``sys.stdout`` then point at stderr, so that nothing
    else -- a library's print, a browser started by ``webbrowser`` -- can write there."""
    sys.stdout.flush()
    stdout_fd = sys.stdout.fileno()
    messages = os.fdopen(os.dup(stdout_fd), "wb")
    os.dup2(sys.stderr.fileno(), stdout_fd)
    sys.stdout = sys.stderr
    return messages


def _mcp_proxy(args: argparse.Namespace, env: Mapping[str, str], err: IO[str]) -> int:
    import asyncio
    import logging

    import httpx

    from .agent.provider import load_identity
    from .protocol.errors import AAuthError
    from .transport import AsyncMappedTransport

    url = httpx.URL(args.url)
    if url.scheme not in ("http", "https") or not url.host:
        raise _Failure(EXIT_USAGE, f"not an http(s) URL: {args.url}")
    messages = _claim_stdout()
    logging.basicConfig(level=logging.WARNING, stream=err,
                        format="aauth-agents: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aauth_agents").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from .integrations.mcp_proxy import proxy_for_agent

    identity = None
    fatal = None
    try:
        identity = load_identity(_store(args, env))
    except AAuthError as exc:
        fatal = (f"aauth-agents mcp-proxy has no agent key to sign with ({exc.detail}): "
                 "create one with `aauth-agents keys init`, or give --dir / --keyring")
        _fail(err, fatal)
    else:
        _fail(err, f"mcp-proxy: agent {identity.agent_id} (key {identity.key.thumbprint()}) "
              f"for {args.url}")
    for origin, destination in args.maps:
        _fail(err, f"mcp-proxy: connections to {origin} go to {destination}")
    proxy = proxy_for_agent(
        identity, str(url), transport=AsyncMappedTransport(dict(args.maps)),
        justification=args.justification, max_poll_seconds=args.max_wait,
        timeout=args.timeout, open_browser=not args.no_browser, stream=err, fatal=fatal,
        on_event=_event_printer(err) if args.verbose else None)
    try:
        asyncio.run(proxy.serve(sys.stdin.buffer, messages))
    finally:
        messages.close()
    return EXIT_OK


def _resource_key(path: str | None, err: IO[str]) -> Any:
    from .agent.storage import DirectoryKeyStore, read_private_key, write_private_key
    from .keys import PrivateKey

    if path is None:
        print("aauth-agents: no --key-file: signing with a new key for this run",
              file=err, flush=True)
        return None
    file = Path(path).expanduser()
    store = DirectoryKeyStore(file.parent)
    key = read_private_key(store, file.name)
    if key is None:
        key = PrivateKey.generate()
        write_private_key(store, file.name, key)
        print(f"aauth-agents: created the signing key {file} (kid {key.kid})", file=err,
              flush=True)
    return key


def _serve_resource(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    import logging

    # Before FastMCP is imported: its logging.basicConfig() then changes nothing.
    logging.basicConfig(level=logging.WARNING, stream=err,
                        format="aauth-agents: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aauth_agents").setLevel(logging.INFO)
    from .servers.demo_resource import demo_resource, mapped_discovery

    maps = dict(args.maps)
    for origin, destination in maps.items():
        print(f"aauth-agents: WARNING --map: {origin} is reached at {destination}, for its "
              "metadata and JWKS only; loopback is admitted for it (development)", file=err,
              flush=True)
    key = _resource_key(args.key_file, err)
    app = demo_resource(args.issuer, issuer_keys=mapped_discovery(maps), signing_key=key)
    return _serve_app(app, args, out, [
        f"metadata  {args.issuer}/.well-known/aauth-resource.json",
        "REST      GET /whoami, GET /profile, GET /files, GET /files/NAME, POST /files",
        f"MCP       {args.issuer}/mcp",
    ], lifespan="on")


def _serve_app(app: Any, args: argparse.Namespace, out: IO[str], lines: Sequence[str],
               *, lifespan: Literal["on", "off"] = "off") -> int:
    """Run ``app`` with uvicorn on ``--host``/``--port`` until interrupted; print the URL
    (``... listening on http://HOST:PORT``) and ``lines`` once it listens."""
    import asyncio

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, lifespan=lifespan, log_level="warning",
        access_log=False))

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
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"aauth-agents: {args.serve_command} {args.issuer} listening on "
                  f"http://{host}:{port}", file=out, flush=True)
            for line in lines:
                print(f"  {line}", file=out, flush=True)
        await task
        return server.started

    if not asyncio.run(run()):
        raise _Failure(EXIT_NETWORK, f"could not listen on {args.host}:{args.port}")
    return EXIT_OK


def _serve_setup(args: argparse.Namespace, err: IO[str]) -> dict[str, str]:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=err,
                        format="aauth-agents: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aauth_agents").setLevel(logging.INFO)
    maps = dict(args.maps)
    for origin, destination in maps.items():
        print(f"aauth-agents: WARNING --map: {origin} is reached at {destination}; loopback "
              "is admitted for it (development)", file=err, flush=True)
    if args.data is None:
        print("aauth-agents: no --data: keys and state are kept in memory for this run",
              file=err, flush=True)
    else:
        Path(args.data).expanduser().mkdir(parents=True, exist_ok=True, mode=0o700)
    return maps


def _serve_ps(args: argparse.Namespace, env: Mapping[str, str], out: IO[str],
              err: IO[str]) -> int:
    import secrets

    from .discovery import AsyncDiscovery
    from .servers.person_server import (
        AutoApprove,
        InteractiveConsent,
        PersonServer,
        PersonServerConfig,
        create_person_server,
        ui_routes,
    )
    from .transport import AsyncMappedTransport

    maps = _serve_setup(args, err)
    discovery = AsyncDiscovery()
    if maps:
        from .servers.demo_resource import mapped_discovery  # loopback for mapped hosts only

        discovery = mapped_discovery(maps)
    person = args.person or ("person" if args.auto_approve else None)
    config = PersonServerConfig(
        issuer=args.issuer,
        database=str(Path(args.data).expanduser()) if args.data else ":memory:",
        policy=AutoApprove(person) if args.auto_approve else InteractiveConsent(),
        default_person=person if args.auto_approve else None,
        discovery=discovery,
        transport=AsyncMappedTransport(maps),
    )
    ps = PersonServer(config)
    app = create_person_server(ps, routes=ui_routes(ps))  # with the person's pages
    if person is not None and not ps.accounts.exists(person):
        password = env.get("AAUTH_AGENTS_PASSWORD") or secrets.token_urlsafe(12)
        ps.accounts.create_account(person, password)
        shown = "from $AAUTH_AGENTS_PASSWORD" if env.get("AAUTH_AGENTS_PASSWORD") else password
        print(f"aauth-agents: created the account {person} (password: {shown})", file=err,
              flush=True)
    if args.auto_approve:
        print(f"aauth-agents: WARNING --auto-approve: every request is granted for {person}",
              file=err, flush=True)
    try:
        return _serve_app(app, args, out, [
            f"metadata  {args.issuer}/.well-known/aauth-person.json",
            f"pages     {args.issuer}/interact/... (consent), /signin, /dashboard",
            f"policy    {'auto-approve for ' + str(person) if args.auto_approve else 'consent'}",
        ])
    finally:
        ps.close()


def _serve_ap(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .servers.agent_provider import AgentProviderConfig, AgentProviderServer

    maps = _serve_setup(args, err)
    ap = AgentProviderServer(AgentProviderConfig(
        issuer=args.issuer, ps=args.ps, connect=maps,
        database=str(Path(args.data).expanduser()) if args.data else ":memory:"))
    try:
        lines = [f"metadata  {args.issuer}/.well-known/aauth-agent.json",
                 f"enrol     POST {args.issuer}/enroll (a one-time code, hwk-signed)"]
        for agent_id in args.enroll:
            lines.append(f"code      {agent_id}: {ap.create_enrollment(agent_id)}")
        return _serve_app(ap.app(), args, out, lines)
    finally:
        ap.close()


def _fail(err: IO[str], message: str) -> None:
    print(f"aauth-agents: {message}", file=err, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ
    err = sys.stderr
    if args.command == "demo":
        from .demo import run

        return run(sys.stdout, interactive=args.interactive)
    import httpx

    from .protocol.errors import AAuthError

    try:
        if args.command == "keys":
            return _keys(args, env, sys.stdout, err)
        if args.command == "fetch":
            return _fetch(args, env, sys.stdout.buffer, err, sys.stdin.buffer, sys.stdin)
        if args.command == "mcp-proxy":
            return _mcp_proxy(args, env, err)
        if args.command == "serve" and args.serve_command == "resource":
            return _serve_resource(args, sys.stdout, err)
        if args.command == "serve" and args.serve_command == "ps":
            return _serve_ps(args, env, sys.stdout, err)
        if args.command == "serve" and args.serve_command == "ap":
            return _serve_ap(args, sys.stdout, err)
    except _Failure as exc:
        _fail(err, str(exc))
        return exc.status
    except AAuthError as exc:
        _fail(err, f"{exc.code}: {exc.detail}")
        return EXIT_AAUTH
    except httpx.HTTPError as exc:
        _fail(err, f"network error: {type(exc).__name__}: {exc}")
        return EXIT_NETWORK
    except KeyboardInterrupt:  # pragma: no cover - interactive
        _fail(err, "interrupted")
        return 130
    _unreachable(args.command)


def _unreachable(command: str) -> NoReturn:  # argparse rejects unknown commands
    raise AssertionError(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
