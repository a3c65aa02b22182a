"""What the commands share: exit statuses, argument types, where the keys live, failures and
their reporting.

Exit status: 0 success (a 2xx response for ``fetch``), 1 a non-2xx response, 2 a usage
error, 3 an AAuth error (its code is printed), 4 a network error.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeAlias

#: Exit status: success.
EXIT_OK = 0
#: Exit status: the server answered with an HTTP error.
EXIT_HTTP = 1
#: Exit status: the command line was wrong.
EXIT_USAGE = 2
#: Exit status: AAuth failed (a typed ``AAuthError``: declined, expired, a bad token...).
EXIT_AAUTH = 3
#: Exit status: a server could not be reached.
EXIT_NETWORK = 4

#: The environment variable naming the agent's key directory.
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

#: What ``register(commands)`` of each command module receives.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


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


# -- argument types ------------------------------------------------------------------------------


def header_type(value: str) -> tuple[str, str]:
    try:
        return parse_header_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def map_type(value: str) -> tuple[str, str]:
    from ..transport import parse_mapping_option

    try:
        return parse_mapping_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def issuer_type(value: str) -> str:
    from ..protocol.identifiers import validate_server_identifier

    try:
        return validate_server_identifier(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port_type(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value!r}")
    return port


def positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {value!r}")
    return number


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--dir`` or ``--keyring``: where the agent's keys live."""
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


def add_map_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--map https://HOST=http://127.0.0.1:PORT`` (repeatable)."""
    parser.add_argument(
        "--map",
        dest="maps",
        action="append",
        default=[],
        type=map_type,
        metavar="https://HOST=http://127.0.0.1:PORT",
        help=help,
    )


# -- running ------------------------------------------------------------------------------------


class Failure(Exception):
    """A command failed: print the message, exit with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def store(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    """The key store ``--dir`` / ``--keyring`` name (default: :func:`default_directory`)."""
    from ..agent.storage import DirectoryKeyStore, KeyringKeyStore

    if args.keyring is not None:
        # A backend named in PYTHON_KEYRING_BACKEND is the user's explicit choice.
        return KeyringKeyStore(
            args.keyring, allow_insecure_backend=bool(env.get("PYTHON_KEYRING_BACKEND"))
        )
    return DirectoryKeyStore(Path(args.dir) if args.dir else default_directory(env))


def event_printer(err: IO[str]) -> Callable[[Any], None]:
    """``-v``: each event of the flow as a line on ``err``."""

    def show(event: Any) -> None:
        describe = getattr(event, "describe", None)
        text = describe() if callable(describe) else str(event)
        print(f"* {text}", file=err, flush=True)

    return show


def log_to(err: IO[str], level: int = logging.INFO) -> None:
    """Log to ``err``: aauth_agents at ``level``, everything else from WARNING."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=err,
        format="aauth-agents: %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aauth_agents").setLevel(level)


def fail(err: IO[str], message: str) -> None:
    print(f"aauth-agents: {message}", file=err, flush=True)


def guarded(command: Callable[[], int], err: IO[str]) -> int:
    """Run ``command``; a :class:`Failure`, an AAuth error or a network error is printed on
    ``err`` and becomes the exit status."""
    import httpx

    from ..protocol.errors import AAuthError

    try:
        return command()
    except Failure as exc:
        fail(err, str(exc))
        return exc.status
    except AAuthError as exc:
        fail(err, f"{exc.code}: {exc.detail}")
        return EXIT_AAUTH
    except httpx.HTTPError as exc:
        fail(err, f"network error: {type(exc).__name__}: {exc}")
        return EXIT_NETWORK
    except KeyboardInterrupt:  # pragma: no cover - interactive
        fail(err, "interrupted")
        return 130
