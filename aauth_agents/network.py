"""A local network of AAuth parties for development: identifier -> where it runs.

ARCHITECTURE.md, "Wire details": a development setup keeps real identifiers
(``https://ps.example``) in everything signed or compared and maps them to loopback or to
in-process ASGI apps at the connection only. :class:`LocalNetwork` is that mapping as one
object that can grow (:meth:`~LocalNetwork.add`), and everything a party needs from it:

* :meth:`~LocalNetwork.transport` / :meth:`~LocalNetwork.async_transport` -- httpx
  transports that look the destination up when each request is sent;
* :meth:`~LocalNetwork.egress` -- egress admission (§JWKS Discovery and Caching) admitting
  loopback and private addresses for the mapped hosts only, read at each fetch;
* :meth:`~LocalNetwork.discovery` -- an ``AsyncDiscovery`` over both;
* :meth:`~LocalNetwork.browser_url` -- an interaction link as a browser on this machine
  reaches it.

A network may live in a small JSON file (``{"parties": {"https://ps.example":
"http://127.0.0.1:8701"}}``): :meth:`LocalNetwork.load` reads it and reads it again whenever
it changes, and :meth:`~LocalNetwork.add` of a loopback URL writes it, so that processes
started later -- or already running -- see parties added by another. ``AAUTH_AGENTS_NETWORK``
(:data:`ENV_NETWORK`) names that file for agent scripts, notebooks and ``aauth-agents fetch``
(:meth:`LocalNetwork.from_env`; ``AAuth`` reads it unless ``trust_env=False``).

::

    network = LocalNetwork({"https://ps.example": "http://127.0.0.1:8701"})
    network.add("https://api.example", my_asgi_app)        # later, in-process
    with httpx.Client(transport=network.transport()) as client: ...
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import tempfile
import threading
from collections.abc import ItemsView, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from .discovery import AsyncDiscovery, EgressPolicy
from .discovery.egress import classify, system_resolver
from .protocol.errors import ConfigurationError
from .transport import ASGIApp, AsyncMappedTransport, MappedTransport, origin_of

log = logging.getLogger("aauth_agents.network")

#: The environment variable naming a network file (:meth:`LocalNetwork.from_env`).
ENV_NETWORK = "AAUTH_AGENTS_NETWORK"

#: Where a party runs: a loopback (or other) origin URL, or an in-process ASGI app.
Destination = str | ASGIApp

_FILE_VERSION = 1


def _identifier(value: str) -> str:
    """``scheme://host[:port]`` as the transports match it (lowercase host, no default
    port); ``ValueError`` for anything that is not an origin."""
    scheme, host, port = origin_of(value)
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def _destination(value: Any) -> Destination:
    if isinstance(value, (str, httpx.URL)):
        return _identifier(str(value))
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise TypeError(f"a destination is an origin URL or an ASGI app, not {value!r}")


def _addresses(destination: Destination) -> list[str]:
    """What a mapped host resolves to: its destination's addresses (loopback for an
    in-process app, which no connection reaches)."""
    if not isinstance(destination, str):
        return ["127.0.0.1"]
    host = httpx.URL(destination).host
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return system_resolver(host)


class LocalNetwork(Mapping[str, Destination]):
    """Identifier -> destination, growing with :meth:`add`, optionally kept in ``file``
    (see the module docstring). ``strict`` -- refuse connections and fetches for hosts
    that are not mapped (else they go to the real network, public addresses only)."""

    def __init__(
        self,
        parties: Mapping[str, Any] | None = None,
        *,
        file: str | os.PathLike[str] | None = None,
        strict: bool = False,
    ) -> None:
        self.file = Path(file).expanduser() if file is not None else None
        self.strict = strict
        self._lock = threading.RLock()
        self._apps: dict[str, Destination] = {}  # in-process, never written to the file
        self._urls: dict[str, Destination] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._egress: EgressPolicy | None = None
        self._refresh()
        for identifier, destination in (parties or {}).items():
            self.add(identifier, destination)

    # -- the mapping -------------------------------------------------------------------------

    @classmethod
    def load(cls, file: str | os.PathLike[str], *, strict: bool = False) -> LocalNetwork:
        """The network kept in ``file`` (which must exist), followed as it changes."""
        path = Path(file).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"no network file at {path}")
        return cls(file=path, strict=strict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalNetwork | None:
        """The network ``$AAUTH_AGENTS_NETWORK`` names (``None`` when it is not set)."""
        value = (os.environ if env is None else env).get(ENV_NETWORK)
        if not value:
            return None
        return cls.load(value)

    def add(self, identifier: str, destination: Any) -> None:
        """Map ``identifier`` (``https://host``) to ``destination`` (an origin URL or an
        ASGI app), replacing what it mapped to; every transport, egress policy and
        discovery made from this network sees it from now on. A URL is also written to the
        network file, when there is one."""
        key = _identifier(identifier)
        value = _destination(destination)
        with self._lock:
            self._refresh()
            self._apps.pop(key, None)
            self._urls.pop(key, None)
            (self._urls if isinstance(value, str) else self._apps)[key] = value
            if isinstance(value, str) and self.file is not None:
                self._write()
        shown = value if isinstance(value, str) else type(value).__name__
        log.info("local network: %s is reached at %s (development)", key, shown)

    def _parties(self) -> dict[str, Destination]:
        with self._lock:
            self._refresh()
            return {**self._urls, **self._apps}

    def __getitem__(self, identifier: str) -> Destination:
        return self._parties()[identifier]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parties())

    def __len__(self) -> int:
        return len(self._parties())

    def items(self) -> ItemsView[str, Destination]:
        """A snapshot (the transports iterate it while another thread may add)."""
        return self._parties().items()

    def origins(self) -> dict[str, str]:
        """The parties reached over the network: identifier -> origin URL."""
        return {k: v for k, v in self._parties().items() if isinstance(v, str)}

    # -- the file ----------------------------------------------------------------------------

    def save(self, file: str | os.PathLike[str]) -> Path:
        """Write the URL parties to ``file`` and follow it from now on; returns its path."""
        with self._lock:
            self.file = Path(file).expanduser()
            self._write()
        return self.file

    def _write(self) -> None:
        assert self.file is not None
        self.file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": _FILE_VERSION, "parties": self._urls}, indent=2)
        handle, temporary = tempfile.mkstemp(dir=self.file.parent, prefix=".network-")
        with os.fdopen(handle, "w") as out:
            out.write(text + "\n")
        os.replace(temporary, self.file)
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.file) if self.file is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_mtime_ns, st.st_size, st.st_ino)

    def _refresh(self) -> None:
        """Read the file again when it changed since it was last read (or written)."""
        if self.file is None:
            return
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return
        try:
            document = json.loads(self.file.read_text())
            parties = document["parties"]
            urls = {_identifier(k): _identifier(v) for k, v in parties.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("network file %s not read: %s", self.file, exc)
            return
        self._urls, self._stamp = dict(urls), stamp

    # -- what parties use --------------------------------------------------------------------

    def transport(self, **options: Any) -> httpx.BaseTransport:
        """An ``httpx.Client`` transport: a mapped identifier's requests go to its
        destination, found when each is sent (``options`` go to :class:`MappedTransport`)."""
        return MappedTransport(self, strict=self.strict, **options)

    def async_transport(self, **options: Any) -> httpx.AsyncBaseTransport:
        """:meth:`transport` for ``httpx.AsyncClient``."""
        return AsyncMappedTransport(self, strict=self.strict, **options)

    def egress(self) -> EgressPolicy:
        """Egress admission where a mapped host resolves to its destination's addresses
        (loopback or private admitted for it) and any other host must resolve to public
        addresses only (or, ``strict``, does not resolve). Read at each fetch; one policy
        per network, so its relaxation is logged once."""
        with self._lock:
            if self._egress is None:
                self._egress = self._build_egress()
            return self._egress

    def _build_egress(self) -> EgressPolicy:

        def resolve(host: str) -> list[str]:
            for identifier, destination in self.items():
                if httpx.URL(identifier).host == host.lower():
                    return _addresses(destination)
            if self.strict:
                raise OSError(f"{host} is not one of the local parties")
            found = system_resolver(host)
            if any(classify(ipaddress.ip_address(a.split("%", 1)[0])) != "global" for a in found):
                raise OSError(f"{host} resolves to a non-public address; only mapped hosts may")
            return found

        return EgressPolicy(resolver=resolve, allow_loopback=True, allow_private=True)

    def discovery(self, **options: Any) -> AsyncDiscovery:
        """Metadata and JWKS discovery reaching the mapped parties (``options`` go to
        :class:`~aauth_agents.discovery.AsyncDiscovery`)."""
        return AsyncDiscovery(transport=self.async_transport(), egress=self.egress(), **options)

    def browser_url(self, url: str) -> str:
        """``url`` (``https://ps.example/interact/...``) as a browser on this machine
        reaches it: the same path and query on the party's loopback origin; ``url`` itself
        when its origin is not mapped to a URL."""
        parsed = httpx.URL(url)
        try:
            destination = self.get(_identifier(f"{parsed.scheme}://{parsed.netloc.decode()}"))
        except ValueError:
            return url
        if not isinstance(destination, str):
            return url
        return destination + parsed.raw_path.decode("ascii")


__all__ = ["ENV_NETWORK", "Destination", "LocalNetwork"]
