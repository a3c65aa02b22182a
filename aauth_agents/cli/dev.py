"""``aauth-agents dev``: the agent provider, a person server, the demo resource and your own
ASGI apps on loopback, in one process, with the environment an agent needs printed."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .common import (
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    Subparsers,
    default_directory,
    guarded,
    log_to,
    map_type,
    port_type,
)

NAME = "dev"


def _app_type(value: str) -> tuple[str, str]:
    from ..servers.dev import parse_app_option

    try:
        return parse_app_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(commands: Subparsers) -> None:
    dev = commands.add_parser(
        NAME,
        help="run a local development stack: agent provider, PS, resources",
        description="Serve, on 127.0.0.1 in one process: the self-hosted agent provider of "
        "the agent in --dir (created as with `keys init` when missing), a person server "
        "https://ps.example with one person account, the demo resource "
        "https://resource.example and your ASGI apps (--app). Prints the environment an "
        "agent script, a notebook or `aauth-agents fetch` needs. Runs until Ctrl-C.",
    )
    dev.add_argument(
        "--app",
        dest="apps",
        action="append",
        default=[],
        type=_app_type,
        metavar="[https://ID=]module:attr",
        help="serve this ASGI app (imported from the current directory) as https://ID "
        "(default https://MODULE.example); a plain Starlette/FastAPI app is protected with "
        "AAuthMiddleware and the scopes of its @requires rules (repeatable)",
    )
    dev.add_argument(
        "--dir",
        metavar="DIR",
        help="the agent's key directory (default: $AAUTH_AGENTS_DIR, else a per-user config "
        "directory); the network file is written there",
    )
    dev.add_argument(
        "--port",
        type=port_type,
        default=8700,
        metavar="BASE",
        help="the PS listens on BASE, the agent provider on BASE+1, the demo resource on "
        "BASE+2, the apps from BASE+3 (default 8700; 0: any free ports)",
    )
    dev.add_argument("--no-demo", action="store_true", help="do not serve the demo resource")
    dev.add_argument(
        "--add",
        type=map_type,
        metavar="https://ID=http://127.0.0.1:PORT",
        help="instead: add a resource running elsewhere to the network of a running "
        "`aauth-agents dev` (its network file), and exit",
    )


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    err = sys.stderr
    return guarded(lambda: dev(args, env, sys.stdout, err), err)


def _directory(args: argparse.Namespace, env: Mapping[str, str]) -> Path:
    return (Path(args.dir) if args.dir else default_directory(env)).expanduser().resolve()


def _add(args: argparse.Namespace, env: Mapping[str, str], out: IO[str]) -> int:
    from ..network import ENV_NETWORK, LocalNetwork
    from ..servers.dev import NETWORK_FILE

    file = Path(env.get(ENV_NETWORK) or _directory(args, env) / NETWORK_FILE)
    if not file.is_file():
        raise Failure(EXIT_USAGE, f"no network file at {file}: is `aauth-agents dev` running?")
    identifier, origin = args.add
    LocalNetwork.load(file).add(identifier, origin)
    print(f"aauth-agents: {identifier} is reached at {origin} (network {file})", file=out)
    return EXIT_OK


def dev(args: argparse.Namespace, env: Mapping[str, str], out: IO[str], err: IO[str]) -> int:
    if args.add is not None:
        return _add(args, env, out)
    log_to(err, level=logging.WARNING)
    from ..servers.dev import DevStack, import_app
    from ..servers.stack import PERSON_SERVER

    apps = [(identifier, import_app(spec)) for identifier, spec in args.apps]
    password = env.get("AAUTH_AGENTS_PASSWORD")
    stack = DevStack(
        _directory(args, env),
        apps=apps,
        port=args.port,
        demo=not args.no_demo,
        password=password,
    )
    try:
        stack.start()
    except RuntimeError as exc:  # a port in use
        raise Failure(EXIT_USAGE, f"{exc}; choose another --port") from exc
    try:
        if stack.created:
            print(
                f"aauth-agents: created the agent {stack.agent.agent_id} in {stack.directory}",
                file=out,
            )
        if stack.agent.provider.ps != PERSON_SERVER:
            print(
                f"aauth-agents: WARNING the agent's person server is {stack.agent.provider.ps}"
                f", not {PERSON_SERVER}: its requests go there (`keys init --force --ps "
                f"{PERSON_SERVER}` makes this stack's PS the agent's)",
                file=err,
            )
        print(
            "aauth-agents dev: running (Ctrl-C stops). Paste into another shell:\n",
            file=out,
        )
        print(stack.snippet(show_password=password is None), file=out, flush=True)
        _wait_for_interrupt()
    finally:
        stack.close()
    print("aauth-agents dev: stopped", file=out, flush=True)
    return EXIT_OK


def _wait_for_interrupt() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
