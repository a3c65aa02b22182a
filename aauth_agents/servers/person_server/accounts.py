"""The person server's local account store: who a person is, and how they sign in.

§PS Approval Endpoint Authentication: the PS MUST authenticate the approving party before it
acts on a consent decision. A local account store is enough for this PS: usernames, passwords
hashed with scrypt (a memory-hard KDF, RFC 7914), and the identity claims released for
identity scopes (§Scopes). How the browser side signs a person in (sessions, CSRF) is the UI's
business; this module only answers "is this the password".

Hashes are stored as ``scrypt$<log2 N>$<r>$<p>$<salt b64url>$<key b64url>``;
:func:`parse_password_hash` reads that back strictly (a value or :class:`PasswordHashError`).
Verification is constant-time in the derived key, and an unknown username costs the same
scrypt work as a known one, so timing does not tell them apart.

Each hash takes ``128 * N * r`` bytes (32 MiB at the default cost), so sign-ins hash in a
bounded pool (:class:`PasswordHashing`): at most ``concurrency`` at once and ``queue``
waiting; beyond that a sign-in is refused at once (:class:`PasswordHashingBusy`, 503) instead
of queueing without bound -- sixty concurrent unauthenticated attempts cost two hashes'
memory, not sixty.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...clock import Clock, system_clock
from ...protocol.encoding import b64url_decode, b64url_encode, loads_json
from ...protocol.errors import AAuthError, ConfigurationError
from .database import PSDatabase

log = logging.getLogger("aauth_agents.ps")

T = TypeVar("T")

#: Default scrypt cost: N = 2**15, r = 8, p = 1 (32 MiB, OWASP's floor is N = 2**17 with
#: r = 8 for interactive logins at higher cost; 2**15 keeps a laptop PS responsive).
DEFAULT_LOG2_N = 15
MIN_LOG2_N = 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MAX_PASSWORD_LENGTH = 1024
MAX_USERNAME_LENGTH = 64

#: OpenID Connect claims an account may carry, released for identity scopes (§Scopes).
PROFILE_CLAIMS = (
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
)
SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "openid": (),
    "profile": PROFILE_CLAIMS,
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
    "groups": ("groups",),
    "roles": ("roles",),
    "tenant": (),  # the tenant claim is the account's tenant, set separately
}
ACCOUNT_CLAIMS = frozenset(c for claims in SCOPE_CLAIMS.values() for c in claims)


class PasswordHashError(ValueError):
    """A stored password hash that is not in the ``scrypt$...`` format."""


class AccountError(ConfigurationError):
    """A username, password or claim the account store refuses."""

    code = "invalid_account"
    status = 400


class PasswordHashingBusy(AAuthError):
    """Every place in the password hashing pool is taken: the sign-in is refused at once
    (503, ``Retry-After``) and nothing was counted or hashed."""

    code = "temporarily_unavailable"
    status = 503

    def __init__(self, detail: str = "too many sign-ins at once", *, retry_after: int = 1):
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class PasswordHashing:
    """A bounded pool for password hashes: ``concurrency`` threads hash, at most ``queue``
    more wait, and :meth:`admit` refuses the rest (:class:`PasswordHashingBusy`). Usable
    from any event loop (the pool is threads, the count a lock)."""

    def __init__(self, concurrency: int = 2, queue: int = 8) -> None:
        if concurrency < 1 or queue < 0:
            raise ConfigurationError("password hashing needs concurrency >= 1 and queue >= 0")
        self.concurrency = concurrency
        self.capacity = concurrency + queue
        self._admitted = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="aauth-password")

    @property
    def admitted(self) -> int:
        """Sign-ins holding a place now (hashing or waiting)."""
        return self._admitted

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for one hash, or raise :class:`PasswordHashingBusy` when none is free."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise PasswordHashingBusy()
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the pool's threads (hold a place from :meth:`admit`)."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class PasswordHash:
    log2_n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        return (
            f"scrypt${self.log2_n}${self.r}${self.p}$"
            f"{b64url_encode(self.salt)}${b64url_encode(self.key)}"
        )


def _small_int(text: str, low: int, high: int, name: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise PasswordHashError(f"{name} must be a decimal integer")
    value = int(text)
    if not low <= value <= high:
        raise PasswordHashError(f"{name} must be within {low}..{high}")
    return value


def parse_password_hash(value: object) -> PasswordHash:
    """Read ``scrypt$<log2 N>$<r>$<p>$<salt>$<key>``; anything else raises
    :class:`PasswordHashError`."""
    if not isinstance(value, str):
        raise PasswordHashError("a password hash is a string")
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise PasswordHashError("not a scrypt$... password hash")
    log2_n = _small_int(parts[1], MIN_LOG2_N, 20, "log2 N")
    r = _small_int(parts[2], 1, 32, "r")
    p = _small_int(parts[3], 1, 16, "p")
    try:
        salt = b64url_decode(parts[4])
        key = b64url_decode(parts[5])
    except ValueError as exc:
        raise PasswordHashError("salt and key must be unpadded base64url") from exc
    if len(salt) < 16 or len(key) < 16:
        raise PasswordHashError("salt and key must be at least 16 bytes")
    return PasswordHash(log2_n, r, p, salt, key)


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int, length: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=length,
        maxmem=256 * n * r + (1 << 20),
    )


def hash_password(password: str, *, log2_n: int = DEFAULT_LOG2_N) -> str:
    """A fresh scrypt hash of ``password`` (random salt)."""
    _check_password(password)
    if not MIN_LOG2_N <= log2_n <= 20:
        raise ConfigurationError(f"scrypt log2 N must be within {MIN_LOG2_N}..20")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, log2_n, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return PasswordHash(log2_n, SCRYPT_R, SCRYPT_P, salt, key).encode()


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded`` (constant-time in the derived key)."""
    parsed = parse_password_hash(encoded)
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    key = _derive(password, parsed.salt, parsed.log2_n, parsed.r, parsed.p, len(parsed.key))
    return hmac.compare_digest(key, parsed.key)


def _check_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise AccountError("a password must be a non-empty string")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def normalize_username(username: object) -> str:
    """NFKC, case-folded, no whitespace or control characters, 1..64 characters."""
    if not isinstance(username, str):
        raise AccountError("a username must be a string")
    value = unicodedata.normalize("NFKC", username).casefold()
    if not value or len(value) > MAX_USERNAME_LENGTH:
        raise AccountError(f"a username has 1..{MAX_USERNAME_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise AccountError("a username has no whitespace or control characters")
    return value


def _check_claims(claims: Mapping[str, Any] | None) -> dict[str, Any]:
    if claims is None:
        return {}
    if not isinstance(claims, Mapping):
        raise AccountError("claims must be a mapping")
    unknown = sorted(set(claims) - ACCOUNT_CLAIMS)
    if unknown:
        raise AccountError(f"unknown identity claims {unknown}; known: {sorted(ACCOUNT_CLAIMS)}")
    try:
        json.dumps(dict(claims))
    except (TypeError, ValueError) as exc:
        raise AccountError(f"claims must be JSON values: {exc}") from exc
    return dict(claims)


@dataclass(frozen=True)
class Account:
    """A person at this PS. ``claims`` are the OpenID Connect claims released for identity
    scopes; ``tenant`` the organization (§Organization Identification), if any."""

    username: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    created_at: float = 0.0
    disabled: bool = False

    def released_claims(self, scopes: tuple[str, ...]) -> dict[str, Any]:
        """The identity claims the given (granted) scopes release (§Scopes)."""
        out: dict[str, Any] = {}
        for scope in scopes:
            for claim in SCOPE_CLAIMS.get(scope, ()):
                if claim in self.claims:
                    out[claim] = self.claims[claim]
        return out


class Accounts:
    """The local account store, in the PS database (``ps_accounts``).

    ``create_account`` / ``authenticate`` are the UI's sign-in primitives; both run scrypt,
    so async callers use ``acreate_account`` (a worker thread) / ``aauthenticate`` (the
    bounded ``hashing`` pool).
    """

    def __init__(
        self,
        db: PSDatabase,
        *,
        clock: Clock = system_clock,
        log2_n: int = DEFAULT_LOG2_N,
        hashing: PasswordHashing | None = None,
    ) -> None:
        if not MIN_LOG2_N <= log2_n <= 20:
            raise ConfigurationError(f"scrypt log2 N must be within {MIN_LOG2_N}..20")
        self.db = db
        self.clock = clock
        self.log2_n = log2_n
        self.hashing = hashing if hashing is not None else PasswordHashing()
        self._dummy: str | None = None

    def create_account(
        self,
        username: str,
        password: str,
        *,
        claims: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Account:
        """Create an account; :class:`AccountError` when the name is taken or invalid."""
        name = normalize_username(username)
        checked = _check_claims(claims)
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise AccountError("tenant must be a non-empty string")
        encoded = hash_password(password, log2_n=self.log2_n)
        now = self.clock()
        try:
            self.db.execute(
                "INSERT INTO ps_accounts (username, password_hash, claims, tenant, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, encoded, json.dumps(checked), tenant, now),
            )
        except self.db.IntegrityError:
            raise AccountError(f"account {name!r} exists") from None
        log.info("created account %s", name)
        return Account(name, checked, tenant, now)

    def get(self, username: str) -> Account | None:
        try:
            name = normalize_username(username)
        except AccountError:
            return None
        row = self.db.fetchone(
            "SELECT username, claims, tenant, created_at, disabled FROM ps_accounts "
            "WHERE username = ?",
            (name,),
        )
        if row is None:
            return None
        claims = loads_json(row[1])
        return Account(
            row[0], claims if isinstance(claims, dict) else {}, row[2], row[3], bool(row[4])
        )

    def exists(self, username: str) -> bool:
        return self.get(username) is not None

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account when ``password`` is right, else ``None`` (unknown user, wrong
        password, disabled account -- indistinguishable to the caller and in timing)."""
        try:
            name = normalize_username(username)
        except AccountError:
            name = None
        row = None
        if name is not None:
            row = self.db.fetchone(
                "SELECT password_hash, disabled FROM ps_accounts WHERE username = ?", (name,)
            )
        if row is None and self._dummy is None:
            # Verified against for unknown usernames, so a miss costs the same scrypt work.
            self._dummy = hash_password(secrets.token_urlsafe(16), log2_n=self.log2_n)
        encoded = row[0] if row is not None else self._dummy
        assert encoded is not None
        try:
            ok = verify_password(password, encoded)
        except PasswordHashError:
            log.error("account %s has a malformed password hash", name)
            ok = False
        if row is None or not ok or row[1]:
            log.info("sign-in refused")
            return None
        assert name is not None
        return self.get(name)

    def set_password(self, username: str, password: str) -> None:
        name = normalize_username(username)
        encoded = hash_password(password, log2_n=self.log2_n)
        if (
            self.db.execute(
                "UPDATE ps_accounts SET password_hash = ? WHERE username = ?", (encoded, name)
            )
            != 1
        ):
            raise AccountError(f"no account {name!r}")

    def set_claims(
        self, username: str, claims: Mapping[str, Any], *, tenant: str | None = None
    ) -> Account:
        name = normalize_username(username)
        checked = _check_claims(claims)
        if (
            self.db.execute(
                "UPDATE ps_accounts SET claims = ?, tenant = ? WHERE username = ?",
                (json.dumps(checked), tenant, name),
            )
            != 1
        ):
            raise AccountError(f"no account {name!r}")
        account = self.get(name)
        assert account is not None
        return account

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        name = normalize_username(username)
        if (
            self.db.execute(
                "UPDATE ps_accounts SET disabled = ? WHERE username = ?", (int(disabled), name)
            )
            != 1
        ):
            raise AccountError(f"no account {name!r}")

    async def acreate_account(
        self,
        username: str,
        password: str,
        *,
        claims: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Account:
        return await self.db.run(
            self.create_account, username, password, claims=claims, tenant=tenant
        )

    async def aauthenticate(
        self,
        username: str,
        password: str,
        *,
        admitted: Callable[[], Awaitable[None]] | None = None,
    ) -> Account | None:
        """:meth:`authenticate` in the bounded ``hashing`` pool; :class:`PasswordHashingBusy`
        when it is full. ``admitted`` runs once the hash has its place and before it starts
        (a limit counts the attempt there, and may refuse it by raising)."""
        with self.hashing.admit():
            if admitted is not None:
                await admitted()
            return await self.hashing.run(self.authenticate, username, password)

    async def aget(self, username: str) -> Account | None:
        return await self.db.run(self.get, username)


__all__ = [
    "ACCOUNT_CLAIMS",
    "DEFAULT_LOG2_N",
    "SCOPE_CLAIMS",
    "Account",
    "AccountError",
    "Accounts",
    "PasswordHash",
    "PasswordHashError",
    "PasswordHashing",
    "PasswordHashingBusy",
    "hash_password",
    "normalize_username",
    "parse_password_hash",
    "verify_password",
]
