"""``aauth-agents fetch URL``: one AAuth request from the shell, every challenge handled."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .common import (
    EXIT_HTTP,
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    Subparsers,
    add_map_option,
    add_store_options,
    event_printer,
    guarded,
    header_type,
    positive,
    store,
)

if TYPE_CHECKING:
    from ..network import LocalNetwork

NAME = "fetch"


def register(commands: Subparsers) -> None:
    fetch = commands.add_parser(
        NAME,
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
        type=header_type,
        metavar="'Name: value'",
    )
    fetch.add_argument(
        "-d", "--data", metavar="DATA", help="request body; @FILE reads a file, @- stdin"
    )
    add_map_option(
        fetch,
        "connect to the second origin for requests to the first; what is signed and "
        "compared is unchanged (repeatable; added to the network $AAUTH_AGENTS_NETWORK "
        "names, which `aauth-agents dev` prints). The interaction link shown is the one a "
        "browser on this machine reaches",
    )
    fetch.add_argument("--justification", help="why the agent asks (shown to the person)")
    fetch.add_argument(
        "--max-wait",
        type=positive,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for approval in all (default 600)",
    )
    fetch.add_argument(
        "--timeout",
        type=positive,
        default=60.0,
        metavar="SECONDS",
        help="network timeout of each request (default 60)",
    )
    fetch.add_argument(
        "-v", "--verbose", action="store_true", help="print each step of the flow on stderr"
    )
    add_store_options(fetch)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    err = sys.stderr
    return guarded(
        lambda: fetch(args, env, sys.stdout.buffer, err, sys.stdin.buffer, sys.stdin), err
    )


def _read_data(value: str | None, stdin: IO[bytes]) -> bytes | None:
    if value is None:
        return None
    if value == "@-":
        return stdin.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise Failure(EXIT_USAGE, f"cannot read {value[1:]}: {exc.strerror}") from exc
    return value.encode("utf-8")


def _network(args: argparse.Namespace, env: Mapping[str, str]) -> LocalNetwork | None:
    """``$AAUTH_AGENTS_NETWORK`` (``aauth-agents dev``) with the ``--map`` options on top;
    ``None`` when there is neither."""
    from ..network import LocalNetwork

    network = LocalNetwork.from_env(env)
    if not args.maps:
        return network
    return LocalNetwork({**(network.origins() if network else {}), **dict(args.maps)})


def fetch(
    args: argparse.Namespace,
    env: Mapping[str, str],
    out: IO[bytes],
    err: IO[str],
    stdin: IO[bytes],
    terminal: IO[str],
) -> int:
    import httpx

    from ..agent.provider import load_identity

    url = httpx.URL(args.url)
    if url.scheme not in ("http", "https") or not url.host:
        raise Failure(EXIT_USAGE, f"not an http(s) URL: {args.url}")
    body = _read_data(args.data, stdin)
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    if not re.fullmatch(r"[A-Z]+", method):
        raise Failure(EXIT_USAGE, f"invalid method {method!r}")
    identity = load_identity(store(args, env))
    from ..agent import AAuth

    verbose = event_printer(err) if args.verbose else None
    if verbose is not None:
        verbose(f"agent {identity.agent_id} (key {identity.key.thumbprint()})")
        for origin, destination in args.maps:
            verbose(f"connections to {origin} go to {destination}")

    from ..prompts import TerminalPrompts

    # The person is asked at the terminal when there is one (stdin is not the body), else
    # the prompts are JSON lines on stderr and questions cannot be answered.
    prompts = TerminalPrompts(
        stream=err, stdin=terminal, interactive=None if args.data != "@-" else False
    )
    auth = AAuth(
        identity,
        capabilities=(
            ("interaction", "clarification") if prompts.interactive else ("interaction",)
        ),
        justification=args.justification,
        prompts=prompts,
        on_event=verbose,
        max_poll_seconds=args.max_wait,
        network=_network(args, env),
        trust_env=False,
    )
    timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, 10.0))
    with auth.client(timeout=timeout) as client:
        response = client.request(method, url, headers=args.headers, content=body)
    if verbose is not None:
        verbose(f"{response.status_code} {response.reason_phrase}")
    out.write(response.content)
    out.flush()
    if response.is_success:
        return EXIT_OK
    raise Failure(EXIT_HTTP, f"HTTP {response.status_code} {response.reason_phrase}")
