"""Signing in, limited: password guesses per account and per client address, with backoff.

Every sign-in form of the person's pages (``/signin`` and the signed-out interaction link)
goes through :meth:`SignIns.authenticate`, in this order:

1. A locked account or address is refused at once (:class:`SignInRefused`, 429 with
   ``Retry-After``): no hash is computed.
2. The hash takes a place in the bounded pool
   (:class:`~.accounts.PasswordHashing`); when none is free the sign-in is refused with 503
   and nothing is counted.
3. The attempt is counted against the account before hashing (atomic in the shared
   :class:`~aauth_agents.stores.AttemptStore`, so concurrent guesses cannot slip past the
   limit); one over ``account_failures`` is refused unhashed.
4. The password is checked. Success forgets the account's count and lockouts; failure at
   ``account_failures`` locks the account, and every failure counts against the client
   address (:func:`~aauth_agents.servers.proxies.client_address`), locked at
   ``address_failures``. Successful sign-ins never count against an address, so people
   behind one NAT do not lock each other out.

A lock lasts ``lockout`` seconds, doubled for every earlier lockout of the same key within
a day, at most ``max_lockout``. The counts live in the PS's shared store (``ps.attempts``),
so the limits hold across every worker process. Unknown and known accounts are counted and
timed alike (:meth:`~.accounts.Accounts.authenticate`); keys are digests, so the store holds
no usernames.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

from ...clock import Clock
from ...protocol.errors import ConfigurationError
from ...stores import AttemptStore
from ..proxies import address_bucket
from .accounts import Account, AccountError, Accounts, PasswordHashingBusy, normalize_username

log = logging.getLogger("aauth_agents.ps")

#: Seconds over which lockouts of one key add up (each doubles the next).
STRIKE_WINDOW = 86_400.0


@dataclass(frozen=True)
class SignInLimits:
    """How much guessing sign-in allows (``PersonServerConfig.signin_limits``).

    * ``account_failures`` / ``address_failures`` -- wrong passwords per account / per
      client address within ``window`` seconds before it is locked.
    * ``lockout`` -- seconds of the first lock; each further one within a day doubles, up to
      ``max_lockout``.
    * ``hashes`` -- password hashes computed at once (each takes 32 MiB at the default
      cost); ``queue`` -- sign-ins waiting for one; more are refused with 503.
    """

    account_failures: int = 5
    address_failures: int = 20
    window: float = 900.0
    lockout: float = 60.0
    max_lockout: float = 3600.0
    hashes: int = 2
    queue: int = 8

    def __post_init__(self) -> None:
        if self.account_failures < 1 or self.address_failures < 1:
            raise ConfigurationError("sign-in limits allow at least one failure")
        if not self.window > 0 or not 0 < self.lockout <= self.max_lockout:
            raise ConfigurationError("sign-in window and lockouts: positive, lockout <= max")
        if self.hashes < 1 or self.queue < 0:
            raise ConfigurationError("sign-in hashes >= 1 and queue >= 0")


class SignInRefused(Exception):
    """A sign-in refused before its password was checked: ``status`` 429 (too many wrong
    passwords for the account or address) or 503 (too many sign-ins at once), and the
    seconds to wait (``retry_after``)."""

    def __init__(self, status: int, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.message = message

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _key(kind: str, value: str) -> str:
    return f"signin:{kind}:{hashlib.sha256(value.encode('utf-8', 'replace')).hexdigest()[:32]}"


class SignIns:
    """The one sign-in check of the person's pages (see the module docstring)."""

    def __init__(
        self, accounts: Accounts, attempts: AttemptStore, limits: SignInLimits, clock: Clock
    ) -> None:
        self.accounts = accounts
        self.attempts = attempts
        self.limits = limits
        self.clock = clock

    async def authenticate(self, username: str, password: str, address: str) -> Account | None:
        """The account when the password is right, ``None`` when wrong (counted); raises
        :class:`SignInRefused` when a limit refuses the attempt unhashed."""
        try:
            name = normalize_username(username)
        except AccountError:
            name = username
        account_key = _key("account", name)
        address_key = _key("address", address_bucket(address))
        for key in (account_key, address_key):
            wait = await self._locked(key)
            if wait:
                raise self._too_many(wait)

        async def count_attempt() -> None:
            tries = await self.attempts.ahit(
                account_key + ":tries", now=self._now(), window=self.limits.window
            )
            if tries > self.limits.account_failures:  # concurrent guesses past the limit
                raise self._too_many(await self._lock_seconds(account_key))

        try:
            account = await self.accounts.aauthenticate(username, password, admitted=count_attempt)
        except PasswordHashingBusy as exc:
            raise SignInRefused(
                503, exc.retry_after, "The server is busy signing people in; try again shortly."
            ) from exc
        if account is not None:
            await self.attempts.aclear(account_key + ":tries")
            await self.attempts.aclear(account_key + ":strikes")
            return account
        await self._failed(account_key, address_key)
        return None

    # -- internals -------------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self.clock())

    async def _failed(self, account_key: str, address_key: str) -> None:
        now = self._now()
        if await self.attempts.acount(account_key + ":tries", now=now) >= (
            self.limits.account_failures
        ):
            await self._lock(account_key, "an account")
        failures = await self.attempts.ahit(
            address_key + ":tries", now=now, window=self.limits.window
        )
        if failures >= self.limits.address_failures:
            await self._lock(address_key, "a client address")

    async def _lock(self, key: str, what: str) -> None:
        """Lock ``key`` for the next lockout of its series and start counting afresh."""
        now = self._now()
        strikes = await self.attempts.ahit(key + ":strikes", now=now, window=STRIKE_WINDOW)
        seconds = self._duration(strikes)
        await self.attempts.ahit(key + ":lock", now=now, window=seconds)
        await self.attempts.aclear(key + ":tries")
        log.warning("sign-in: %s locked for %d s after too many wrong passwords", what, seconds)

    async def _locked(self, key: str) -> int:
        """Seconds (at most) ``key`` stays locked; 0 when it is not."""
        if not await self.attempts.acount(key + ":lock", now=self._now()):
            return 0
        return await self._lock_seconds(key)

    async def _lock_seconds(self, key: str) -> int:
        strikes = await self.attempts.acount(key + ":strikes", now=self._now())
        return self._duration(max(strikes, 1))

    def _duration(self, strikes: int) -> int:
        seconds: float = self.limits.lockout * 2.0 ** min(strikes - 1, 30)
        return math.ceil(min(seconds, self.limits.max_lockout))

    @staticmethod
    def _too_many(seconds: int) -> SignInRefused:
        minutes = max(1, math.ceil(seconds / 60))
        return SignInRefused(
            429,
            seconds,
            f"Too many wrong passwords. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
        )


__all__ = ["STRIKE_WINDOW", "SignInLimits", "SignInRefused", "SignIns"]
